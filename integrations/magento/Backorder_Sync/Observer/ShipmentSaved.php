<?php
declare(strict_types=1);

namespace Backorder\Sync\Observer;

use Backorder\Sync\Model\PayloadBuilder;
use Backorder\Sync\Model\Sender;
use Magento\Framework\Event\Observer;
use Magento\Framework\Event\ObserverInterface;
use Magento\Sales\Model\Order\Shipment;

/** Saving a shipment again (tracking numbers) resends the same webhook id: a harmless duplicate. */
class ShipmentSaved implements ObserverInterface
{
    public function __construct(private readonly PayloadBuilder $builder, private readonly Sender $sender)
    {
    }

    public function execute(Observer $observer): void
    {
        $shipment = $observer->getEvent()->getShipment();
        if (!$shipment instanceof Shipment || !$shipment->getEntityId()) {
            return;
        }
        $this->sender->send($this->builder->shipmentCreated($shipment, (string) $shipment->getOrder()->getIncrementId()));
    }
}
