<?php
declare(strict_types=1);

namespace Backorder\Sync\Model;

use Magento\CatalogInventory\Api\Data\StockItemInterface;
use Magento\InventoryApi\Api\Data\SourceItemInterface;
use Magento\Sales\Api\Data\OrderInterface;
use Magento\Sales\Api\Data\ShipmentInterface;

/**
 * The JSON events this module sends: {"type", "timestamp", "data"}. The schema is in the module
 * README and in integrations/magento/fixtures/*.json, which the backorder test suite checks
 * against this file and parses with the Magento connector.
 */
class PayloadBuilder
{
    /** @return array{0: string, 1: string, 2: array<string, mixed>} webhook id, type, data */
    public function orderPlaced(OrderInterface $order): array
    {
        $items = [];
        foreach ($order->getItems() as $item) {
            $items[] = [
                'item_id' => (int) $item->getItemId(),
                'sku' => (string) $item->getSku(),
                'qty_ordered' => (float) $item->getQtyOrdered(),
                'product_type' => (string) $item->getProductType(),
                'parent_item_id' => $item->getParentItemId() ? (int) $item->getParentItemId() : null,
            ];
        }
        $name = trim($order->getCustomerFirstname() . ' ' . $order->getCustomerLastname());
        $address = $order->getBillingAddress();
        $data = [
            'store_id' => (int) $order->getStoreId(),
            'entity_id' => (int) $order->getEntityId(),
            'increment_id' => (string) $order->getIncrementId(),
            'created_at' => (string) $order->getCreatedAt(),
            'customer_email' => (string) $order->getCustomerEmail(),
            'customer_name' => $name !== '' ? $name : null,
            'customer_telephone' => $address ? $address->getTelephone() : null,
            'items' => $items,
        ];
        return ['mg-order-placed-' . $order->getEntityId(), 'order.placed', $data];
    }

    /** @return array{0: string, 1: string, 2: array<string, mixed>} */
    public function orderCancelled(OrderInterface $order): array
    {
        $data = [
            'store_id' => (int) $order->getStoreId(),
            'entity_id' => (int) $order->getEntityId(),
            'increment_id' => (string) $order->getIncrementId(),
        ];
        return ['mg-order-cancelled-' . $order->getEntityId(), 'order.cancelled', $data];
    }

    /** @return array{0: string, 1: string, 2: array<string, mixed>} */
    public function shipmentCreated(ShipmentInterface $shipment, string $orderIncrementId): array
    {
        $items = [];
        foreach ($shipment->getItems() as $item) {
            $items[] = [
                'order_item_id' => (int) $item->getOrderItemId(),
                'sku' => (string) $item->getSku(),
                'qty' => (float) $item->getQty(),
            ];
        }
        $extension = $shipment->getExtensionAttributes();
        $sourceCode = $extension && method_exists($extension, 'getSourceCode') ? $extension->getSourceCode() : null;
        $data = [
            'shipment_id' => (int) $shipment->getEntityId(),
            'order_entity_id' => (int) $shipment->getOrderId(),
            'order_increment_id' => $orderIncrementId,
            'source_code' => $sourceCode,
            'items' => $items,
        ];
        return ['mg-shipment-' . $shipment->getEntityId(), 'shipment.created', $data];
    }

    /**
     * @param SourceItemInterface[] $sourceItems
     * @return array{0: string, 1: string, 2: array<string, mixed>}
     */
    public function sourceItems(array $sourceItems): array
    {
        $items = [];
        foreach ($sourceItems as $sourceItem) {
            $items[] = [
                'sku' => (string) $sourceItem->getSku(),
                'source_code' => (string) $sourceItem->getSourceCode(),
                'quantity' => (float) $sourceItem->getQuantity(),
                'status' => (int) $sourceItem->getStatus(),
            ];
        }
        return ['mg-stock-' . bin2hex(random_bytes(8)), 'stock.source_items', ['items' => $items]];
    }

    /** @return array{0: string, 1: string, 2: array<string, mixed>} */
    public function stockItem(StockItemInterface $stockItem, string $sku): array
    {
        $data = [
            'sku' => $sku,
            'product_id' => (int) $stockItem->getProductId(),
            'source_code' => 'default',
            'qty' => (float) $stockItem->getQty(),
            'is_in_stock' => (int) $stockItem->getIsInStock(),
        ];
        return ['mg-stock-item-' . bin2hex(random_bytes(8)), 'stock.item', $data];
    }

    /** The body as sent: the observation time is fixed here, retries resend the same bytes. */
    public static function encode(string $type, array $data, ?int $now = null): string
    {
        $envelope = ['type' => $type, 'timestamp' => gmdate('Y-m-d\TH:i:sP', $now ?? time()), 'data' => $data];
        return json_encode($envelope, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR);
    }
}
