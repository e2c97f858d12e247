// MQTT.js over WebSocket, for tests/broker_websockets.rs: connects, subscribes, publishes, and prints
// one line per event on stdout (`connected`, `refused CODE`, `error TEXT`, `subscribed`, `got TOPIC
// PAYLOAD`, `done`). Exits within --wait milliseconds after the publishes, and within 10 s in all.
//
// node ws_client.js URL USER PASSWORD [--ca FILE] [--sub FILTER] [--pub TOPIC=PAYLOAD]... [--wait MS]
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const [url, username, password, ...rest] = process.argv.slice(2);
let ca = null;
let sub = null;
let wait = 500;
const pubs = [];
for (let i = 0; i < rest.length; i += 2) {
  const [flag, value] = [rest[i], rest[i + 1]];
  if (flag === '--ca') ca = fs.readFileSync(value);
  else if (flag === '--sub') sub = value;
  else if (flag === '--wait') wait = Number(value);
  else if (flag === '--pub') {
    const at = value.indexOf('=');
    pubs.push([value.slice(0, at), value.slice(at + 1)]);
  } else throw new Error(`unknown flag ${flag}`);
}

const say = (line) => process.stdout.write(`${line}\n`);
const end = (client, code) => {
  say('done');
  client.end(true, () => process.exit(code));
  setTimeout(() => process.exit(code), 1000);
};

const options = {
  username,
  password,
  clientId: `js-${username}-${process.pid}`,
  protocolVersion: 4,
  reconnectPeriod: 0,
  connectTimeout: 5000,
};
if (url.startsWith('wss:')) {
  if (ca) options.ca = ca;
  else options.rejectUnauthorized = false;
}
const client = mqtt.connect(url, options);
setTimeout(() => { say('error timeout'); end(client, 2); }, 10000);

client.on('error', (e) => {
  say(e.code !== undefined && typeof e.code === 'number' ? `refused ${e.code}` : `error ${e.message}`);
  end(client, 1);
});
client.on('message', (topic, payload) => say(`got ${topic} ${payload.toString()}`));
client.on('connect', async () => {
  say('connected');
  try {
    if (sub !== null) {
      await client.subscribeAsync(sub, { qos: 1 });
      say('subscribed');
    }
    for (const [topic, payload] of pubs) {
      await client.publishAsync(topic, payload, { qos: 1 });
    }
  } catch (e) {
    say(`error ${e.message}`);
  }
  setTimeout(() => end(client, 0), wait);
});
