<?php
declare(strict_types=1);

namespace Backorder\Sync\Observer;

use Backorder\Sync\Model\PayloadBuilder;
use Backorder\Sync\Model\Sender;
use Magento\Framework\Event\Observer;
use Magento\Framework\Event\ObserverInterface;
use Magento\Sales\Model\Order;

class OrderCancelled implements ObserverInterface
{
    public function __construct(private readonly PayloadBuilder $builder, private readonly Sender $sender)
    {
    }

    public function execute(Observer $observer): void
    {
        $order = $observer->getEvent()->getOrder();
        if ($order instanceof Order && $order->getEntityId()) {
            $this->sender->send($this->builder->orderCancelled($order));
        }
    }
}
