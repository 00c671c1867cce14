<?php
declare(strict_types=1);

namespace Backorder\Sync\Model;

use Magento\Framework\App\ResourceConnection;
use Magento\Framework\HTTP\Client\CurlFactory;
use Psr\Log\LoggerInterface;

/**
 * Every event is first written to backorder_sync_queue (so nothing is lost), then sent once with a
 * short timeout; a failure leaves the row for the cron job (Cron\RetryQueue), with backoff.
 * Nothing here throws: a failing endpoint never breaks checkout, shipping or stock saves.
 */
class Sender
{
    private const TABLE = 'backorder_sync_queue';
    private const MAX_BACKOFF_MINUTES = 60;

    public function __construct(
        private readonly Config $config,
        private readonly ResourceConnection $resource,
        private readonly CurlFactory $curlFactory,
        private readonly LoggerInterface $logger
    ) {
    }

    /** @param array{0: string, 1: string, 2: array<string, mixed>} $event */
    public function send(array $event): void
    {
        if (!$this->config->isEnabled()) {
            return;
        }
        [$webhookId, $type, $data] = $event;
        try {
            $body = PayloadBuilder::encode($type, $data);
            $connection = $this->resource->getConnection();
            $table = $this->resource->getTableName(self::TABLE);
            $connection->insertOnDuplicate($table, ['webhook_id' => $webhookId, 'body' => $body], ['webhook_id']);
            $this->deliver($webhookId, $body);
        } catch (\Throwable $e) {
            $this->logger->warning('Backorder Sync: could not queue ' . $type . ': ' . $e->getMessage());
        }
    }

    /** Send one queued event; true when the endpoint answered 2xx (the row is then deleted). */
    public function deliver(string $webhookId, string $body): bool
    {
        $connection = $this->resource->getConnection();
        $table = $this->resource->getTableName(self::TABLE);
        $error = null;
        try {
            $curl = $this->curlFactory->create();
            $curl->setTimeout($this->config->timeoutSeconds());
            foreach (Signer::headers($this->config->secret(), $webhookId, time(), $body) as $name => $value) {
                $curl->addHeader($name, $value);
            }
            $curl->post($this->config->endpointUrl(), $body);
            $status = $curl->getStatus();
            if ($status >= 200 && $status < 300) {
                $connection->delete($table, ['webhook_id = ?' => $webhookId]);
                return true;
            }
            $error = 'HTTP ' . $status;
        } catch (\Throwable $e) {
            $error = substr($e->getMessage(), 0, 200);
        }
        $row = $connection->fetchRow($connection->select()->from($table, ['attempts'])->where('webhook_id = ?', $webhookId));
        $attempts = (int) ($row['attempts'] ?? 0) + 1;
        $wait = min(self::MAX_BACKOFF_MINUTES, 2 ** min($attempts, 6));
        $connection->update(
            $table,
            ['attempts' => $attempts, 'last_error' => $error, 'next_attempt_at' => gmdate('Y-m-d H:i:s', time() + 60 * $wait)],
            ['webhook_id = ?' => $webhookId]
        );
        $this->logger->info('Backorder Sync: ' . $webhookId . ' not delivered (' . $error . '), retry in ' . $wait . ' min');
        return false;
    }
}
