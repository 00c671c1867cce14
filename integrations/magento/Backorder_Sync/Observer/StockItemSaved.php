<?php
declare(strict_types=1);

namespace Backorder\Sync\Observer;

use Backorder\Sync\Model\Config;
use Backorder\Sync\Model\PayloadBuilder;
use Backorder\Sync\Model\Sender;
use Magento\Catalog\Model\ResourceModel\Product as ProductResource;
use Magento\CatalogInventory\Api\Data\StockItemInterface;
use Magento\Framework\App\State;
use Magento\Framework\Event\Observer;
use Magento\Framework\Event\ObserverInterface;

/** Legacy (single-source) stock: off by default, see the README. */
class StockItemSaved implements ObserverInterface
{
    public function __construct(
        private readonly Config $config,
        private readonly PayloadBuilder $builder,
        private readonly Sender $sender,
        private readonly ProductResource $productResource,
        private readonly State $appState
    ) {
    }

    public function execute(Observer $observer): void
    {
        if (!$this->config->sendLegacyStockItems()) {
            return;
        }
        $item = $observer->getEvent()->getItem();
        if (!$item instanceof StockItemInterface || $this->fromApi()) {
            return;
        }
        $skus = $this->productResource->getProductsSku([(int) $item->getProductId()]);
        if (!$skus) {
            return;
        }
        $this->sender->send($this->builder->stockItem($item, (string) $skus[0]['sku']));
    }

    private function fromApi(): bool
    {
        try {
            return $this->config->skipApiStockChanges() && str_starts_with($this->appState->getAreaCode(), 'webapi');
        } catch (\Throwable) {
            return false;
        }
    }
}
