'use strict';
// Runs the int_backorder job step under Node with stubbed dw.* modules and prints the HTTP
// requests it made as JSON. Usage: node sfcc_harness.js <cartridge dir> <secret>
const Module = require('module');
const crypto = require('crypto');
const path = require('path');

const [cartridge, secret] = process.argv.slice(2);
const requests = [];
const at = (iso) => new Date(iso);
const qty = (n) => ({ value: n });
const iterator = (items) => {
    let i = 0;
    return { hasNext: () => i < items.length, next: () => items[i++], close: () => {} };
};

const orders = {
    created: [{
        orderNo: '00001234', creationDate: at('2026-11-27T09:24:51.000Z'), status: { displayValue: 'NEW' },
        customerEmail: 'ada@example.com', customerName: 'Ada Lovelace', billingAddress: { phone: '+441632960001' },
        productLineItems: { toArray: () => [
            { position: 1, productID: 'WN-CAD-RED-5ML', quantityValue: 2 },
            { position: 2, productID: 'WN-COTMAN-SET-12', quantityValue: 1 },
        ] },
    }],
    cancelled: [{ orderNo: '00001234' }],
};
const products = [{ ID: 'WN-CAD-RED-5ML' }, { ID: 'NOT-CHANGED' }];
const records = {
    'WN-CAD-RED-5ML': { productID: 'WN-CAD-RED-5ML', allocation: qty(14), allocationResetDate: at('2026-11-27T06:00:00.000Z'),
        stockLevel: qty(11), ATS: qty(11), lastModified: new Date() },
    'NOT-CHANGED': { productID: 'NOT-CHANGED', allocation: qty(1), allocationResetDate: at('2020-01-01T00:00:00.000Z'),
        stockLevel: qty(1), ATS: qty(1), lastModified: at('2020-01-01T00:00:00.000Z') },
};

function Status(status, code, message) { this.status = status; this.code = code; this.message = message; }
Status.OK = 0; Status.ERROR = 1;
function HTTPClient() { this.headers = {}; }
HTTPClient.prototype.setTimeout = function (ms) { this.timeout = ms; };
HTTPClient.prototype.open = function (method, url) { this.method = method; this.url = url; };
HTTPClient.prototype.setRequestHeader = function (k, v) { this.headers[k] = v; };
HTTPClient.prototype.send = function (body) {
    requests.push({ method: this.method, url: this.url, headers: this.headers, body: body, timeout: this.timeout });
    this.statusCode = 200;
};
function Mac(algorithm) { if (algorithm !== Mac.HMAC_SHA_256) throw new Error('unexpected ' + algorithm); }
Mac.HMAC_SHA_256 = 'HmacSHA256';
Mac.prototype.digest = (input, key) => crypto.createHmac('sha256', key).update(Buffer.from(input, 'utf8')).digest();

const stubs = {
    'dw/system/Status': Status,
    'dw/system/Site': { getCurrent: () => ({ ID: 'RefArch', getCustomPreferenceValue: (k) => ({
        backorderEndpointUrl: 'https://backorder.example.com/webhooks/sfcc/eu', backorderSecret: secret })[k] }) },
    'dw/system/Logger': { getLogger: () => ({ warn: () => {}, info: () => {} }) },
    'dw/order/Order': { ORDER_STATUS_FAILED: 8, ORDER_STATUS_CANCELLED: 6 },
    'dw/order/OrderMgr': { searchOrders: (query, sort, since, status) => iterator(status === 6 ? orders.cancelled : orders.created) },
    'dw/catalog/ProductMgr': { queryAllSiteProducts: () => iterator(products) },
    'dw/catalog/ProductInventoryMgr': { getInventoryList: (id) => ({ getRecord: (p) => records[p.ID] }) },
    'dw/net/HTTPClient': HTTPClient,
    'dw/crypto/Mac': Mac,
    'dw/crypto/Encoding': { fromBase64: (s) => Buffer.from(s, 'base64'), toBase64: (b) => Buffer.from(b).toString('base64') },
};
const load = Module._load;
Module._load = function (request, parent, isMain) {
    if (Object.prototype.hasOwnProperty.call(stubs, request)) return stubs[request];
    return load.apply(this, arguments);
};

const step = require(path.join(cartridge, 'cartridge/scripts/jobsteps/SendBackorderEvents.js'));
const status = step.execute({ LookbackMinutes: 30, InventoryListIDs: 'inventory_london', TimeoutMillis: 5000 });
process.stdout.write(JSON.stringify({ status: status, requests: requests }));
