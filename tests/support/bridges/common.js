'use strict';
/*
 * What every MessengerBotR bridge generation shares, as PROTOCOL.md describes it:
 * the HMAC-SHA256 `auth` signature, the 30 s queue of events produced while
 * disconnected (signed at queue time, with ipAddress "unknown"), reading lines the
 * way BufferedReader.readLine() does, and the control channel a test drives it by.
 *
 * Control channel: one JSON object per line on stdin, one report per line on stdout.
 *   {"cmd":"connect"}                open the TCP connection (no reconnect loop)
 *   {"cmd":"say","room":…,"text":…,  a chat message seen by the phone: sent at once
 *    "sender":…,"channelId":…,       when connected, queued otherwise
 *    "userHash":…,"logId":…}
 *   {"cmd":"close"} / {"cmd":"quit"}
 * Reports: connected, closed, message (what was written or queued, with the
 * timestamp the line carried), handshakeComplete, ping (answered), send (what
 * bot.send(room, text) would post), media, error, dropped (a line the bridge ignores).
 */

const crypto = require('crypto');
const net = require('net');
const readline = require('readline');

const CLIENT_TYPE = 'MessengerBotR';
// Android hides the real MAC from apps; every modern phone reports this constant.
const MAC_ADDRESS = '02:00:00:00:00:00';
const QUEUE_MILLIS = 30 * 1000;
const DEVICE_INFO = 'samsung SM-S911N (Android 14, API 34)';

function options(argv) {
  const opts = {
    host: '127.0.0.1', port: 1490, bot: 'kkobot', secret: '', salt: '',
    device: '5f3c2a1b9d8e7f60', version: null, timezone: 'Asia/Seoul', ip: '127.0.0.1',
  };
  for (let i = 2; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in opts)) throw new Error('unknown option ' + argv[i]);
    opts[name] = name === 'port' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

/** hex(HMAC-SHA256(SECRET_KEY, "clientType|botName|deviceUUID|macAddress|ipAddress|timestamp|BOT_SPECIFIC_SALT")) */
function sign(secret, salt, auth) {
  const message = [auth.clientType, auth.botName, auth.deviceUUID, auth.macAddress,
    auth.ipAddress, String(auth.timestamp), salt].join('|');
  return crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(message, 'utf8').digest('hex');
}

function makeAuth(opts, ipAddress) {
  const auth = {
    clientType: CLIENT_TYPE, botName: opts.bot, deviceUUID: opts.device, deviceID: opts.device,
    macAddress: MAC_ADDRESS, ipAddress: ipAddress, timestamp: Date.now(), version: opts.version,
  };
  auth.signature = sign(opts.secret, opts.salt, auth);
  return auth;
}

/** The phone's wall clock in its zone, `YYYY-MM-DD HH:MM:SS`, as 3.2 bridges send it. */
function localTime(date, timezone) {
  const parts = {};
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  for (const part of format.formatToParts(date)) parts[part.type] = part.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** The monitoring block of a ping answer (3.1.4+). */
function monitoring(queueSize) {
  return { total_memory: 6028, memory_usage: 8, memory_percent: 0.1,
    message_queue_size: queueSize, active_rooms: 1 };
}

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/**
 * Runs one bridge generation. `generation` provides:
 *   handshake()                  the handshake line
 *   chat(say, ipAddress)         {line, timestamp} for one chat message
 *   received(text, bridge)       handles one server line (a JS string, newline removed)
 *   flushBeforeHandshake         true where the queue goes out before the handshake (3.3.3)
 */
class Bridge {
  constructor(opts, generation) {
    this.opts = opts;
    this.generation = generation;
    this.socket = null;
    this.connected = false;
    this.queue = [];
  }

  connect() {
    const socket = net.createConnection({ host: this.opts.host, port: this.opts.port });
    this.socket = socket;
    let pending = Buffer.alloc(0);
    socket.on('connect', () => {
      this.connected = true;
      report({ type: 'connected' });
      if (this.generation.flushBeforeHandshake) {
        this.flush();
        this.write(this.generation.handshake());
      } else {
        this.write(this.generation.handshake());
        this.flush();
      }
    });
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      let at;
      while ((at = pending.indexOf(0x0a)) !== -1) {
        let line = pending.subarray(0, at);
        pending = pending.subarray(at + 1);
        if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
        const text = line.toString('utf8');
        try {
          this.generation.received(text, this);
        } catch (e) {
          report({ type: 'dropped', reason: String(e), line: text.slice(0, 200) });
        }
      }
    });
    socket.on('error', (e) => report({ type: 'socketError', reason: String(e) }));
    socket.on('close', () => {
      this.connected = false;
      report({ type: 'closed' });
    });
  }

  write(line) {
    this.socket.write(line, 'utf8');
  }

  /** A chat message: written now, or queued (signed now) while disconnected. */
  say(say) {
    if (this.connected) {
      const built = this.generation.chat(say, this.opts.ip);
      this.write(built.line);
      report({ type: 'message', queued: false, text: say.text, room: say.room, logId: say.logId,
        timestamp: built.timestamp });
    } else {
      const built = this.generation.chat(say, 'unknown');
      this.queue.push({ at: Date.now(), line: built.line });
      report({ type: 'message', queued: true, text: say.text, room: say.room, logId: say.logId,
        timestamp: built.timestamp });
    }
  }

  flush() {
    const now = Date.now();
    const queued = this.queue.filter((entry) => now - entry.at <= QUEUE_MILLIS);
    this.queue = [];
    for (const entry of queued) this.write(entry.line);
  }

  close() {
    if (this.socket) this.socket.end();
  }
}

function run(generation, opts) {
  const bridge = new Bridge(opts, generation);
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (!line.trim()) return;
    const command = JSON.parse(line);
    if (command.cmd === 'connect') bridge.connect();
    else if (command.cmd === 'say') bridge.say(command);
    else if (command.cmd === 'close') bridge.close();
    else if (command.cmd === 'quit') process.exit(0);
    else report({ type: 'dropped', reason: 'unknown command ' + command.cmd });
  });
  input.on('close', () => process.exit(0));
  report({ type: 'ready', version: opts.version });
}

module.exports = { CLIENT_TYPE, DEVICE_INFO, options, sign, makeAuth, localTime, monitoring, report, run };
