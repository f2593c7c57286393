'use strict';
/*
 * A MessengerBotR 3.2.0 bridge, written from PROTOCOL.md: one JSON object per line,
 * the legacy bare handshake, `analyze` with camelCase fields and the phone's local
 * time, the server's ping answered with a ping echoing `server_timestamp`, and
 * `messageResponse` text posted with bot.send (media as `MEDIA_URL:` / `IMAGE_BASE64:`
 * text, sources joined by `|||`). Its queue goes out after the handshake.
 * Usage: node bridge32.js --port N --secret S --salt T [--device D]
 */

const common = require('./common');

const opts = common.options(process.argv);
opts.version = opts.version || '3.2.0';
const MEDIA_PREFIXES = { 'MEDIA_URL:': 'url', 'IMAGE_BASE64:': 'base64' };

function line(obj) {
  return JSON.stringify(obj) + '\n';
}

const generation = {
  flushBeforeHandshake: false,

  handshake() {
    return line({
      clientType: common.CLIENT_TYPE, botName: opts.bot, version: opts.version,
      deviceID: opts.device, deviceIP: opts.ip, deviceInfo: common.DEVICE_INFO,
    });
  },

  chat(say, ipAddress) {
    const timestamp = common.localTime(new Date(), opts.timezone);
    const data = {
      room: say.room, text: say.text, sender: say.sender || '홍길동', isGroupChat: true,
      channelId: say.channelId === undefined ? null : say.channelId,
      logId: say.logId === undefined ? null : say.logId,
      userHash: say.userHash === undefined ? null : say.userHash, isMention: false,
      timestamp: timestamp, botName: opts.bot, clientType: common.CLIENT_TYPE,
      auth: common.makeAuth(opts, ipAddress),
    };
    return { line: line({ event: 'analyze', data: data }), timestamp: timestamp };
  },

  received(text, bridge) {
    const event = JSON.parse(text);
    const data = event.data;
    if (data === null || typeof data !== 'object') throw new Error('no data object');
    if (event.event === 'handshakeComplete') {
      common.report({ type: 'handshakeComplete', data: data });
    } else if (event.event === 'ping') {
      common.report({ type: 'ping', data: data });
      bridge.write(line({ event: 'ping', data: {
        bot_name: opts.bot, server_timestamp: data.server_timestamp,
        monitoring: common.monitoring(bridge.queue.length), auth: common.makeAuth(opts, opts.ip),
      } }));
    } else if (event.event === 'messageResponse') {
      const reply = data.text;
      for (const prefix of Object.keys(MEDIA_PREFIXES)) {
        if (reply.startsWith(prefix)) {
          const kind = MEDIA_PREFIXES[prefix];
          const sources = reply.slice(prefix.length).split('|||').map((s) => ({ [kind]: s }));
          common.report({ type: 'media', room: data.room, channelId: data.channel_id, kind: 'image',
            sources: sources, waitTime: data.media_wait_time });
          return;
        }
      }
      common.report({ type: 'send', room: data.room, channelId: data.channel_id, text: reply });
    } else if (event.event === 'error') {
      common.report({ type: 'error', data: data });
    } else {
      common.report({ type: 'dropped', reason: 'event ' + event.event, line: text.slice(0, 200) });
    }
  },
};

common.run(generation, opts);
