'use strict';

/**
 * The events int_backorder sends, as {type, timestamp, data} JSON. No dw.* imports, so the
 * backorder test suite runs this file under Node and parses its output with the SFCC connector.
 * The schema is in integrations/sfcc/README.md and integrations/sfcc/fixtures/*.json.
 */

function toArray(collection) {
    if (!collection) {
        return [];
    }
    return typeof collection.toArray === 'function' ? collection.toArray() : collection;
}

function iso(date) {
    return date ? new Date(date.getTime()).toISOString() : null;
}

function orderCreated(order) {
    var lines = toArray(order.productLineItems).map(function (pli) {
        return { position: Number(pli.position), product_id: String(pli.productID), quantity: Number(pli.quantityValue) };
    });
    var billing = order.billingAddress;
    return {
        id: 'sfcc-order-created-' + order.orderNo,
        type: 'order.created',
        data: {
            site_id: order.siteId || null,
            order_no: String(order.orderNo),
            creation_date: iso(order.creationDate),
            status: String(order.status && order.status.displayValue ? order.status.displayValue : order.status).toLowerCase(),
            customer_email: order.customerEmail || null,
            customer_name: order.customerName || null,
            phone: billing && billing.phone ? billing.phone : null,
            product_line_items: lines
        }
    };
}

function orderCancelled(order) {
    return {
        id: 'sfcc-order-cancelled-' + order.orderNo,
        type: 'order.cancelled',
        data: { site_id: order.siteId || null, order_no: String(order.orderNo), status: 'cancelled' }
    };
}

function inventoryRecords(inventoryListId, records, batchKey) {
    return {
        id: 'sfcc-inventory-' + inventoryListId + '-' + batchKey,
        type: 'inventory.records',
        data: {
            inventory_list_id: inventoryListId,
            records: records.map(function (record) {
                return {
                    product_id: String(record.productID),
                    allocation: record.allocation ? Number(record.allocation.value) : 0,
                    allocation_reset_date: iso(record.allocationResetDate),
                    stock_level: record.stockLevel ? Number(record.stockLevel.value) : 0,
                    ats: record.ATS ? Number(record.ATS.value) : 0
                };
            })
        }
    };
}

function encode(event, now) {
    return JSON.stringify({ type: event.type, timestamp: new Date(now.getTime()).toISOString(), data: event.data });
}

module.exports = {
    orderCreated: orderCreated,
    orderCancelled: orderCancelled,
    inventoryRecords: inventoryRecords,
    encode: encode
};
