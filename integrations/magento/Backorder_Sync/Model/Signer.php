<?php
declare(strict_types=1);

namespace Backorder\Sync\Model;

/**
 * Standard Webhooks v1 (https://www.standardwebhooks.com/): HMAC-SHA256 over "id.timestamp.body"
 * with the base64-decoded secret (optionally prefixed "whsec_"), sent as "v1,<base64>".
 * No Magento dependency, so it can be tested with plain `php`.
 */
class Signer
{
    public static function sign(string $secret, string $webhookId, int $timestamp, string $body): string
    {
        $key = base64_decode(preg_replace('/^whsec_/', '', trim($secret)), true);
        if ($key === false || $key === '') {
            throw new \InvalidArgumentException('Backorder Sync secret must be base64, optionally prefixed whsec_');
        }
        $digest = hash_hmac('sha256', $webhookId . '.' . $timestamp . '.' . $body, $key, true);
        return 'v1,' . base64_encode($digest);
    }

    /** @return array<string, string> */
    public static function headers(string $secret, string $webhookId, int $timestamp, string $body): array
    {
        return [
            'Content-Type' => 'application/json',
            'webhook-id' => $webhookId,
            'webhook-timestamp' => (string) $timestamp,
            'webhook-signature' => self::sign($secret, $webhookId, $timestamp, $body),
        ];
    }
}
