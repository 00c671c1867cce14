<?php
declare(strict_types=1);

namespace Backorder\Sync\Observer;

use Backorder\Sync\Model\PayloadBuilder;
use Backorder\Sync\Model\Sender;
use Magento\Framework\Event\Observer;
use Magento\Framework\Event\ObserverInterface;
use Magento\Sales\Model\Order;

/**
 * sales_order_place_after fires before the order is saved (no entity or item ids yet), so the
 * event is sent from a commit callback: after the order's transaction commits, never inside it.
 */
class OrderPlaced implements ObserverInterface
{
    public function __construct(private readonly PayloadBuilder $builder, private readonly Sender $sender)
    {
    }

    public function execute(Observer $observer): void
    {
        $order = $observer->getEvent()->getOrder();
        if (!$order instanceof Order) {
            return;
        }
        $order->getResource()->addCommitCallback(function () use ($order): void {
            $this->sender->send($this->builder->orderPlaced($order));
        });
    }
}
