<?php
declare(strict_types=1);

namespace Backorder\Sync\Model;

use Magento\Framework\App\Config\ScopeConfigInterface;
use Magento\Framework\Encryption\EncryptorInterface;

class Config
{
    private const PREFIX = 'backorder_sync/';

    public function __construct(
        private readonly ScopeConfigInterface $scopeConfig,
        private readonly EncryptorInterface $encryptor
    ) {
    }

    public function isEnabled(): bool
    {
        return $this->scopeConfig->isSetFlag(self::PREFIX . 'general/enabled')
            && $this->endpointUrl() !== '' && $this->secret() !== '';
    }

    public function endpointUrl(): string
    {
        return trim((string) $this->scopeConfig->getValue(self::PREFIX . 'general/endpoint_url'));
    }

    public function secret(): string
    {
        return trim($this->encryptor->decrypt((string) $this->scopeConfig->getValue(self::PREFIX . 'general/secret')));
    }

    public function timeoutSeconds(): int
    {
        return max(1, (int) $this->scopeConfig->getValue(self::PREFIX . 'general/timeout_seconds'));
    }

    public function skipApiStockChanges(): bool
    {
        return $this->scopeConfig->isSetFlag(self::PREFIX . 'events/skip_api_stock_changes');
    }

    public function sendLegacyStockItems(): bool
    {
        return $this->scopeConfig->isSetFlag(self::PREFIX . 'events/legacy_stock_item');
    }
}
