<?php
declare(strict_types=1);

namespace Backorder\Sync\Cron;

use Backorder\Sync\Model\Config;
use Backorder\Sync\Model\Sender;
use Magento\Framework\App\ResourceConnection;

/** Every minute: resend queued events whose next attempt is due, oldest first. */
class RetryQueue
{
    private const BATCH = 100;

    public function __construct(
        private readonly Config $config,
        private readonly ResourceConnection $resource,
        private readonly Sender $sender
    ) {
    }

    public function execute(): void
    {
        if (!$this->config->isEnabled()) {
            return;
        }
        $connection = $this->resource->getConnection();
        $select = $connection->select()
            ->from($this->resource->getTableName('backorder_sync_queue'), ['webhook_id', 'body'])
            ->where('next_attempt_at <= ?', gmdate('Y-m-d H:i:s'))
            ->order('id ASC')
            ->limit(self::BATCH);
        foreach ($connection->fetchAll($select) as $row) {
            $this->sender->deliver((string) $row['webhook_id'], (string) $row['body']);
        }
    }
}
