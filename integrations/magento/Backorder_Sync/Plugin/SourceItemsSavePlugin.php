<?php
declare(strict_types=1);

namespace Backorder\Sync\Plugin;

use Backorder\Sync\Model\Config;
use Backorder\Sync\Model\PayloadBuilder;
use Backorder\Sync\Model\Sender;
use Magento\Framework\App\State;
use Magento\InventoryApi\Api\SourceItemsSaveInterface;

/**
 * Multi-Source Inventory has no "source item saved" event; this after-plugin on
 * SourceItemsSaveInterface::execute is the hook every admin, import and API save goes through.
 * Saves made through the REST API (backorder's own stock pushes) are skipped by default.
 */
class SourceItemsSavePlugin
{
    public function __construct(
        private readonly Config $config,
        private readonly PayloadBuilder $builder,
        private readonly Sender $sender,
        private readonly State $appState
    ) {
    }

    /** @param \Magento\InventoryApi\Api\Data\SourceItemInterface[] $sourceItems */
    public function afterExecute(SourceItemsSaveInterface $subject, $result, array $sourceItems)
    {
        if ($sourceItems && !$this->fromApi()) {
            $this->sender->send($this->builder->sourceItems($sourceItems));
        }
        return $result;
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
