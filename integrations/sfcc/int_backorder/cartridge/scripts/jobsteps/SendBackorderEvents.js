'use strict';

/**
 * Job step custom.Backorder.SendEvents: posts orders created or cancelled, and inventory records
 * changed, in the last LookbackMinutes to backorder, each signed with Standard Webhooks
 * (webhook-id, webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256(id.ts.body)>").
 * Webhook ids are stable per order event, so overlapping runs send duplicates backorder ignores.
 * Site preferences: backorderEndpointUrl, backorderSecret.
 */

var Status = require('dw/system/Status');
var Site = require('dw/system/Site');
var Logger = require('dw/system/Logger');
var OrderMgr = require('dw/order/OrderMgr');
var Order = require('dw/order/Order');
var ProductMgr = require('dw/catalog/ProductMgr');
var ProductInventoryMgr = require('dw/catalog/ProductInventoryMgr');
var HTTPClient = require('dw/net/HTTPClient');
var Mac = require('dw/crypto/Mac');
var Encoding = require('dw/crypto/Encoding');
var payloads = require('../backorder/payloads');

var log = Logger.getLogger('backorder', 'int_backorder');
var INVENTORY_BATCH = 200;

function sign(secret, webhookId, timestamp, body) {
    var key = Encoding.fromBase64(secret.replace(/^whsec_/, ''));
    var digest = new Mac(Mac.HMAC_SHA_256).digest(webhookId + '.' + timestamp + '.' + body, key);
    return 'v1,' + Encoding.toBase64(digest);
}

function post(settings, event) {
    var now = new Date();
    var body = payloads.encode(event, now);
    var timestamp = String(Math.floor(now.getTime() / 1000));
    var client = new HTTPClient();
    client.setTimeout(settings.timeout);
    client.open('POST', settings.url);
    client.setRequestHeader('Content-Type', 'application/json');
    client.setRequestHeader('webhook-id', event.id);
    client.setRequestHeader('webhook-timestamp', timestamp);
    client.setRequestHeader('webhook-signature', sign(settings.secret, event.id, timestamp, body));
    client.send(body);
    if (client.statusCode >= 200 && client.statusCode < 300) {
        return true;
    }
    log.warn('backorder refused {0}: HTTP {1}', event.id, client.statusCode);
    return false;
}

function eachOrder(query, args, callback) {
    var orders = OrderMgr.searchOrders.apply(OrderMgr, [query, 'creationDate asc'].concat(args));
    try {
        while (orders.hasNext()) {
            callback(orders.next());
        }
    } finally {
        orders.close();
    }
}

function changedInventory(listId, since, send) {
    var list = ProductInventoryMgr.getInventoryList(listId);
    if (!list) {
        log.warn('inventory list {0} not found', listId);
        return;
    }
    var products = ProductMgr.queryAllSiteProducts();
    var batch = [];
    var batchNo = 0;
    try {
        while (products.hasNext()) {
            var record = list.getRecord(products.next());
            if (record && record.lastModified && record.lastModified.getTime() >= since.getTime()) {
                batch.push(record);
            }
            if (batch.length === INVENTORY_BATCH) {
                send(payloads.inventoryRecords(listId, batch, String(Date.now()) + '-' + (batchNo += 1)));
                batch = [];
            }
        }
    } finally {
        products.close();
    }
    if (batch.length) {
        send(payloads.inventoryRecords(listId, batch, String(Date.now()) + '-' + (batchNo + 1)));
    }
}

function execute(parameters) {
    var site = Site.getCurrent();
    var settings = {
        url: site.getCustomPreferenceValue('backorderEndpointUrl'),
        secret: site.getCustomPreferenceValue('backorderSecret'),
        timeout: Number(parameters.TimeoutMillis || 10000)
    };
    if (!settings.url || !settings.secret) {
        return new Status(Status.ERROR, 'ERROR', 'Set the site preferences backorderEndpointUrl and backorderSecret');
    }
    var since = new Date(Date.now() - Number(parameters.LookbackMinutes || 30) * 60 * 1000);
    var failures = 0;
    var sent = 0;
    var send = function (event) {
        var ok = false;
        try {
            ok = post(settings, event);
        } catch (e) {
            log.warn('could not send {0}: {1}', event.id, e.message);
        }
        if (ok) {
            sent += 1;
        } else {
            failures += 1;
        }
    };
    eachOrder('creationDate >= {0} AND status != {1}', [since, Order.ORDER_STATUS_FAILED], function (order) {
        var event = payloads.orderCreated(order);
        event.data.site_id = site.ID;
        send(event);
    });
    eachOrder('lastModified >= {0} AND status = {1}', [since, Order.ORDER_STATUS_CANCELLED], function (order) {
        var event = payloads.orderCancelled(order);
        event.data.site_id = site.ID;
        send(event);
    });
    String(parameters.InventoryListIDs || '').split(',').forEach(function (listId) {
        if (listId.trim()) {
            changedInventory(listId.trim(), since, send);
        }
    });
    if (failures) {
        return new Status(Status.ERROR, 'ERROR', failures + ' event(s) not accepted, ' + sent + ' sent; the next run retries');
    }
    return new Status(Status.OK, 'OK', sent + ' event(s) sent');
}

module.exports = { execute: execute, sign: sign };
