'use strict';
/*
 * A MessengerBotR 3.3.x bridge (3.3.3 by default; `--version 3.3.2`), written from
 * PROTOCOL.md "v3.3.x: JSON header + raw content":
 *  - every line is `{"event":…,"data":{…}}RAW\n`; the header ends at lastIndexOf('}');
 *  - chat text goes as base64 of UTF-8 in RAW, cut at data.message_positions;
 *  - data.timestamp is ISO 8601 UTC with milliseconds and Z, data.timezone the zone;
 *  - `message` with snake_case fields replaces `analyze`;
 *  - the server's ping is answered with `pong` (3.3.2: with `ping`);
 *  - 3.3.3 flushes its queue as soon as the connection opens, before the handshake;
 *  - messageResponse / scheduleMessage / broadcastMessage: text (base64) → bot.send,
 *    image / audio / video / document → the sources in RAW (http(s) URLs, else base64
 *    payloads); `[0,0]` is dropped; a 3.2 `data.text` is ignored.
 * Usage: node bridge33.js --port N --secret S --salt T [--version 3.3.2] [--device D]
 */

const common = require('./common');

const opts = common.options(process.argv);
opts.version = opts.version || '3.3.3';
const NO_CONTENT = [0, 0];
const MEDIA_TYPES = ['image', 'audio', 'video', 'document'];
const REPLY_EVENTS = ['messageResponse', 'scheduleMessage', 'broadcastMessage'];

function line(event, data, raw) {
  return JSON.stringify({ event: event, data: data }) + (raw || '') + '\n';
}

/** Header and RAW cut at its positions, as the bridge reads a line. */
function parse(text) {
  const end = text.lastIndexOf('}');
  if (end < 0) throw new Error('no JSON header');
  const header = JSON.parse(text.substring(0, end + 1));
  const data = header.data;
  if (data === null || typeof data !== 'object') throw new Error('no data object');
  const raw = text.substring(end + 1);
  const positions = Array.isArray(data.message_positions) ? data.message_positions : NO_CONTENT;
  const pieces = [];
  for (let i = 0; i + 1 < positions.length; i++) pieces.push(raw.substring(positions[i], positions[i + 1]));
  return { event: header.event, data: data, pieces: pieces, empty: positions[positions.length - 1] === 0 };
}

const generation = {
  // 3.3.3 sends what it queued while disconnected before its handshake.
  flushBeforeHandshake: opts.version === '3.3.3',

  handshake() {
    return line('handshake', {
      clientType: common.CLIENT_TYPE, botName: opts.bot, version: opts.version,
      deviceID: opts.device, deviceIP: opts.ip, deviceInfo: common.DEVICE_INFO,
      timestamp: new Date().toISOString(), timezone: opts.timezone, message_positions: NO_CONTENT,
    });
  },

  chat(say, ipAddress) {
    const raw = Buffer.from(say.text, 'utf8').toString('base64');
    const timestamp = new Date().toISOString();
    const data = {
      room: say.room, channel_id: say.channelId === undefined ? null : say.channelId,
      message_type: 'text', content_encoding: 'base64', message_positions: [0, raw.length],
      timestamp: timestamp, timezone: opts.timezone, sender: say.sender || '홍길동',
      is_group_chat: true, log_id: say.logId === undefined ? null : say.logId,
      user_hash: say.userHash === undefined ? null : say.userHash, is_mention: false,
      bot_name: opts.bot, client_type: common.CLIENT_TYPE,
      auth: common.makeAuth(opts, ipAddress),
    };
    return { line: line('message', data, raw), timestamp: timestamp };
  },

  received(text, bridge) {
    const got = parse(text);
    const data = got.data;
    if (got.event === 'handshakeComplete') {
      common.report({ type: 'handshakeComplete', data: data });
      if (data.success === false) bridge.close();
    } else if (got.event === 'ping') {
      common.report({ type: 'ping', data: data });
      const answer = {
        bot_name: opts.bot, server_timestamp: data.server_timestamp,
        monitoring: common.monitoring(bridge.queue.length), auth: common.makeAuth(opts, opts.ip),
        timestamp: new Date().toISOString(), timezone: opts.timezone, message_positions: NO_CONTENT,
      };
      bridge.write(line(opts.version === '3.3.2' ? 'ping' : 'pong', answer));
    } else if (REPLY_EVENTS.includes(got.event)) {
      if (got.empty) {
        common.report({ type: 'dropped', reason: 'no content', line: text.slice(0, 200) });
      } else if (data.message_type === 'text') {
        const decoded = Buffer.from(got.pieces[0], 'base64').toString('utf8');
        common.report({ type: 'send', room: data.room, channelId: data.channel_id, text: decoded });
      } else if (MEDIA_TYPES.includes(data.message_type)) {
        const sources = got.pieces.map((piece) => (/^https?:\/\//.test(piece) ? { url: piece } : { base64: piece }));
        common.report({ type: 'media', room: data.room, channelId: data.channel_id,
          kind: data.message_type, sources: sources, waitTime: data.media_wait_time });
      } else {
        common.report({ type: 'dropped', reason: 'message_type ' + data.message_type, line: text.slice(0, 200) });
      }
    } else if (got.event === 'error') {
      common.report({ type: 'error', data: data });
    } else {
      common.report({ type: 'dropped', reason: 'event ' + got.event, line: text.slice(0, 200) });
    }
  },
};

common.run(generation, opts);
