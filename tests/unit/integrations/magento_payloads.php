<?php
// Runs the module's real PayloadBuilder against stub Magento objects and prints the event bodies
// it builds, keyed by fixture file name. Usage: php magento_payloads.php <path to Backorder_Sync>
declare(strict_types=1);

namespace Magento\Sales\Api\Data {
    interface OrderInterface {}
    interface ShipmentInterface {}
}

namespace Magento\InventoryApi\Api\Data {
    interface SourceItemInterface {}
}

namespace Magento\CatalogInventory\Api\Data {
    interface StockItemInterface {}
}

namespace BackorderHarness {
    class Stub
    {
        public function __construct(private array $data) {}

        public function __call(string $name, array $args): mixed
        {
            $key = strtolower(preg_replace('/(?<!^)[A-Z]/', '_$0', substr($name, 3)));
            return $this->data[$key] ?? null;
        }
    }

    class Order extends Stub implements \Magento\Sales\Api\Data\OrderInterface {}
    class Shipment extends Stub implements \Magento\Sales\Api\Data\ShipmentInterface {}
    class SourceItem extends Stub implements \Magento\InventoryApi\Api\Data\SourceItemInterface {}
    class StockItem extends Stub implements \Magento\CatalogInventory\Api\Data\StockItemInterface {}
    class ShipmentExtension
    {
        public function getSourceCode(): string { return 'ws-london'; }
    }
}

namespace {
    use Backorder\Sync\Model\PayloadBuilder;
    use BackorderHarness\Order;
    use BackorderHarness\Shipment;
    use BackorderHarness\ShipmentExtension;
    use BackorderHarness\SourceItem;
    use BackorderHarness\Stub;
    use BackorderHarness\StockItem;

    require $argv[1] . '/Model/PayloadBuilder.php';
    $builder = new PayloadBuilder();
    $order = new Order([
        'store_id' => 1, 'entity_id' => 42, 'increment_id' => '000000042', 'created_at' => '2026-11-27 09:29:57',
        'customer_email' => 'ada@example.com', 'customer_firstname' => 'Ada', 'customer_lastname' => 'Lovelace',
        'billing_address' => new Stub(['telephone' => '+441632960001']),
        'items' => [
            new Stub(['item_id' => '77', 'sku' => 'WN-CAD-RED-5ML', 'qty_ordered' => '2.0000', 'product_type' => 'simple']),
            new Stub(['item_id' => '78', 'sku' => 'WN-COTMAN-SET-12', 'qty_ordered' => '1.0000', 'product_type' => 'simple']),
        ],
    ]);
    $shipment = new Shipment([
        'entity_id' => 9, 'order_id' => 42, 'extension_attributes' => new ShipmentExtension(),
        'items' => [new Stub(['order_item_id' => 77, 'sku' => 'WN-CAD-RED-5ML', 'qty' => '2.0000'])],
    ]);
    $events = [
        'order.placed.json' => [$builder->orderPlaced($order), '2026-11-27T09:29:58Z'],
        'order.cancelled.json' => [$builder->orderCancelled($order), '2026-11-27T09:31:00Z'],
        'shipment.created.json' => [$builder->shipmentCreated($shipment, '000000042'), '2026-11-28T14:02:11Z'],
        'stock.source_items.json' => [$builder->sourceItems([
            new SourceItem(['sku' => 'WN-CAD-RED-5ML', 'source_code' => 'ws-london', 'quantity' => 12, 'status' => 1]),
            new SourceItem(['sku' => 'WN-CAD-RED-5ML', 'source_code' => 'default', 'quantity' => 3, 'status' => 1]),
        ]), '2026-11-27T09:20:00Z'],
        'stock.item.json' => [$builder->stockItem(
            new StockItem(['product_id' => 1501, 'qty' => 4, 'is_in_stock' => 1]), 'WN-COTMAN-SET-12'
        ), '2026-11-27T09:21:00Z'],
    ];
    $out = [];
    foreach ($events as $file => [[$webhookId, $type, $data], $when]) {
        $out[$file] = ['webhook_id' => $webhookId, 'body' => PayloadBuilder::encode($type, $data, strtotime($when))];
    }
    echo json_encode($out, JSON_UNESCAPED_SLASHES);
}
