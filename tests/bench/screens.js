#!/usr/bin/env node
// Screen simulator: N websocket screens on a server's /ws (kendali, or the
// reference stack of reference/), M of which never read, and how long the
// server takes to show them an event.  See tests/bench/README.md.
//
//   node screens.js idle --url URL --key KEY --screens 10000 --server-pid PID
//   node screens.js load --url URL --key KEY --screens 1000 --stalled 100
//
// The screens live in worker threads, so that the main thread, which posts
// the probe events and takes the time of their 202, never waits behind
// thousands of sockets.  Times are process.hrtime (monotonic, one clock for
// every thread).
//
// A probe is an event whose effect on the screens' data can be told apart
// from everything else:
//   kendali    a reading of a sensor of the simulator's own (registered at
//              start, thresholds out of reach) whose value encodes the probe
//              number; the probe is on a screen once sensors.latest shows
//              that value or a later probe's;
//   reference  any event; its 202 carries X-Events-Total, the running total
//              after the request, and the probe is on a screen once a
//              message's events.total reaches it.
// Delay of a probe on a screen = arrival of the first message reflecting
// it - arrival of its 202 at the simulator.  It can be slightly negative
// when the server sends the message before the answer.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const { performance } = require('node:perf_hooks');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const WebSocket = require('ws');

const PROTOCOL = 'situation.v1';
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic

const USAGE = `usage: node screens.js idle|load --url URL --key KEY [options]

modes:
  idle   connect the screens, measure the server's memory per connection,
         then post --pushes single events, one every --interval ms, and
         measure how long each takes to reach every reading screen
  load   connect the screens, then post a probe event every --interval ms
         for --duration s while something else loads the server, and
         measure event-to-screen delay

options:
  --url URL              the server (http://127.0.0.1:8080)
  --key KEY              API key for the probe events (else $KENDALI_KEY);
                         on kendali a key with the sensor type
  --token TOKEN          screen token for /ws (default none: kendali must
                         run with --anonymous-loopback)
  --screens N            screens (1000)
  --stalled M            of which never read a byte (0)
  --workers W            threads holding the screens (1 up to 2000
                         screens, else 2)
  --server-pid PID       the server's process: its RSS before and after
                         connecting (/proc/PID/status) gives KiB/connection
  --sensor ID            kendali: the probe sensor (bench-screens)
  --pushes K             idle: pushes measured (5)
  --interval MS          mean time between probes, drawn from 0.5 to
                         1.5 times it: idle 1000, load 150
  --duration S           load: seconds of probes (30)
  --settle S             wait after connecting, before the memory (2)
  --timeout S            longest wait for a probe to reach every reading
                         screen (10)
  --connect-concurrency N  upgrades in flight per worker (100)
  --ring N               progress messages remembered per screen (256)
  --ready-file FILE      write FILE once the screens are connected (start
                         the load then; --settle passes before probing)
  --json FILE            write the summary as JSON too`;

// ---- shared helpers ----

function die(msg) {
	console.error(`screens: error: ${msg}`);
	process.exit(1);
}

function say(msg) {
	console.error(`screens: ${msg}`);
}

function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

// The decimal number starting at buf[i] (digits, sign, point, exponent).
function numberAt(buf, i) {
	let j = i;
	while (j < buf.length) {
		const c = buf[j];
		// 0-9 + - . e E
		if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46 || c === 101 || c === 69) j++;
		else break;
	}
	return j > i ? Number(buf.toString('latin1', i, j)) : NaN;
}

function skipSpace(buf, i) {
	while (i < buf.length && (buf[i] === 32 || buf[i] === 9 || buf[i] === 10 || buf[i] === 13)) i++;
	return i;
}

// ---- worker: a share of the screens ----

function workerMain() {
	const cfg = workerData;
	const n = cfg.count;
	const R = cfg.ring;
	const reading = new Uint8Array(n); // 1: reads (not stalled)
	const state = new Uint8Array(n); // 0 connecting, 1 ready, 2 failed, 3 closed
	const lastSeq = new Float64Array(n).fill(-1);
	const progress = new Float64Array(n).fill(-Infinity);
	const pendingFrom = new Int32Array(n); // first probe not yet reflected
	const ringT = new Float64Array(n * R);
	const ringP = new Float64Array(n * R);
	const ringHead = new Int32Array(n); // next slot
	const ringCount = new Float64Array(n); // entries ever written
	const sockets = new Array(n);
	const thresholds = []; // per announced probe
	const recv = []; // per probe: Float64Array(n) of arrival times, NaN
	const resolved = []; // per probe: reading screens reached
	const doneSent = [];
	const counters = {
		messages: 0, bytes: 0, gaps: 0, resyncs: 0, imprecise: 0,
		stalled_messages: 0, connect_failed: 0, closed_reading: 0,
		closed_stalled: 0, close_codes: {}, fail_reasons: {},
	};
	let liveReading = 0;
	let elu0 = null;

	const kendali = cfg.kind === 'kendali';
	const sensorPat = Buffer.from(`"sensor_id":"${cfg.sensor}"`);
	const totalPat = Buffer.from('"events.total":');
	const valuePat = Buffer.from('"value":');
	const snapPat = Buffer.from('"snapshot"');

	// The progress a message shows: the latest probe number (kendali) or
	// the events' running total (reference); NaN when it says nothing.
	function progressOf(buf) {
		if (kendali) {
			const i = buf.indexOf(sensorPat);
			if (i < 0) return NaN;
			const v = buf.indexOf(valuePat, i);
			const end = buf.indexOf(125, i); // '}' closes the sensor's entry
			let value;
			if (v >= 0 && (end < 0 || v < end)) {
				value = numberAt(buf, skipSpace(buf, v + valuePat.length));
			} else {
				value = slowValue(buf);
			}
			const k = value - cfg.base;
			return Number.isInteger(k) && k >= 0 && k < 1e6 ? k : NaN;
		}
		const i = buf.indexOf(totalPat);
		return i < 0 ? NaN : numberAt(buf, skipSpace(buf, i + totalPat.length));
	}

	function slowValue(buf) {
		try {
			const m = JSON.parse(buf.toString('utf8'));
			for (const s of (m.kpis && m.kpis['sensors.latest']) || [])
				if (s.sensor_id === cfg.sensor) return s.value;
		} catch { /* not JSON: nothing to learn */ }
		return NaN;
	}

	function resolve(j, i, t) {
		recv[j][i] = t;
		resolved[j]++;
		checkDone(j);
	}

	function checkDone(j) {
		if (!doneSent[j] && resolved[j] >= liveReading) {
			doneSent[j] = true;
			parentPort.postMessage({ type: 'done', probe: j });
		}
	}

	function onMessage(i, data, t) {
		counters.messages++;
		counters.bytes += data.length;
		// {"seq":N,... : every message of both servers starts so.
		if (data[0] === 123 && data[1] === 34 && data[2] === 115 && data[3] === 101 && data[4] === 113) {
			const seq = numberAt(data, skipSpace(data, 7));
			if (lastSeq[i] >= 0 && seq !== lastSeq[i] + 1) counters.gaps++;
			lastSeq[i] = seq;
		}
		if (state[i] === 1 && data.subarray(0, 48).indexOf(snapPat) >= 0) counters.resyncs++;
		const p = progressOf(data);
		if (!(p > progress[i])) return;
		progress[i] = p;
		const slot = i * R + ringHead[i];
		ringT[slot] = t;
		ringP[slot] = p;
		ringHead[i] = (ringHead[i] + 1) % R;
		ringCount[i]++;
		while (pendingFrom[i] < thresholds.length && thresholds[pendingFrom[i]] <= p) {
			resolve(pendingFrom[i], i, t);
			pendingFrom[i]++;
		}
	}

	// A probe's threshold is known once its 202 is in; the screens may have
	// seen it already, so their remembered progress is searched.
	function announce(j, thr) {
		thresholds[j] = thr;
		recv[j] = new Float64Array(n).fill(NaN);
		resolved[j] = 0;
		doneSent[j] = false;
		for (let i = 0; i < n; i++) {
			if (!reading[i] || state[i] !== 1 || pendingFrom[i] !== j) continue;
			const cnt = Math.min(ringCount[i], R);
			for (let q = 0; q < cnt; q++) {
				const slot = i * R + ((ringHead[i] - cnt + q + R) % R);
				if (ringP[slot] >= thr) {
					// The first match is the oldest entry of a ring that has
					// wrapped: the true first message may be older.
					if (q === 0 && ringCount[i] > R) counters.imprecise++;
					recv[j][i] = ringT[slot];
					resolved[j]++;
					pendingFrom[i]++;
					break;
				}
			}
		}
		checkDone(j);
	}

	function closed(i, code) {
		if (state[i] !== 1) return;
		state[i] = 3;
		counters.close_codes[code] = (counters.close_codes[code] || 0) + 1;
		if (reading[i]) {
			counters.closed_reading++;
			liveReading--;
			for (let j = 0; j < thresholds.length; j++) checkDone(j);
		} else {
			counters.closed_stalled++;
		}
	}

	let next = 0;
	let inflight = 0;
	let settled = 0;

	function settle(i, ok, reason) {
		if (ok) {
			state[i] = 1;
			if (reading[i]) liveReading++;
		} else {
			state[i] = 2;
			counters.connect_failed++;
			counters.fail_reasons[reason] = (counters.fail_reasons[reason] || 0) + 1;
		}
		inflight--;
		settled++;
		if (settled === n) {
			parentPort.postMessage({ type: 'connected', ready: n - counters.connect_failed, failed: counters.connect_failed });
		} else {
			pump();
		}
	}

	function open(i) {
		const headers = cfg.token ? { Authorization: `Bearer ${cfg.token}` } : {};
		const ws = new WebSocket(cfg.wsUrl, PROTOCOL, {
			headers,
			perMessageDeflate: false,
			skipUTF8Validation: true,
			handshakeTimeout: 15000,
			maxPayload: 16 << 20,
		});
		sockets[i] = ws;
		reading[i] = i < cfg.stalled ? 0 : 1;
		let done = false;
		const finish = (ok, reason) => {
			if (done) return;
			done = true;
			settle(i, ok, reason);
		};
		ws.on('open', () => {
			if (!reading[i]) {
				// Never reads: the server's frames stay in the kernel's
				// buffers until they fill and the server sees it stall.
				ws.pause();
				finish(true);
			}
		});
		ws.on('message', (data) => {
			const t = now();
			if (!reading[i]) {
				counters.stalled_messages++;
				return;
			}
			if (!done) {
				onMessage(i, data, t);
				finish(true);
				return;
			}
			if (state[i] === 1) onMessage(i, data, t);
		});
		ws.on('unexpected-response', (req, res) => {
			finish(false, `HTTP ${res.statusCode}`);
			req.destroy();
		});
		ws.on('error', (err) => finish(false, err.code || err.message));
		ws.on('close', (code) => {
			if (!done) finish(false, `closed ${code}`);
			else closed(i, code);
		});
	}

	function pump() {
		while (inflight < cfg.concurrency && next < n) {
			inflight++;
			open(next++);
		}
	}

	parentPort.on('message', (m) => {
		if (m.type === 'mark') {
			elu0 = performance.eventLoopUtilization();
		} else if (m.type === 'probe') {
			announce(m.probe, m.threshold);
		} else if (m.type === 'finish') {
			const elu = performance.eventLoopUtilization(elu0 || undefined);
			// A screen that never reads cannot see the server close it
			// (the close waits behind the unread data): let those read
			// now, and count the ones that turn out to be closed.
			let stalledOpen = 0;
			for (let i = 0; i < n; i++) {
				if (!reading[i] && state[i] === 1) {
					sockets[i].resume();
					stalledOpen++;
				}
			}
			setTimeout(() => report(elu), stalledOpen ? m.drainMs : 0);
		}
	});

	function report(elu) {
		const times = [];
		for (let j = 0; j < recv.length; j++) {
			// Only the screens that read.
			const a = [];
			for (let i = 0; i < n; i++) if (reading[i] && state[i] !== 2) a.push(recv[j][i]);
			times.push(Float64Array.from(a));
		}
		parentPort.postMessage({
			type: 'result', counters, times,
			live_reading: liveReading,
			elu: elu.utilization,
		});
		for (const ws of sockets) if (ws) ws.terminate();
		setTimeout(() => process.exit(0), 200).unref();
	}
	pump();
}

// ---- main thread ----

function parseArgs(argv) {
	const o = {
		mode: null, url: 'http://127.0.0.1:8080', key: process.env.KENDALI_KEY || '',
		token: '', screens: 1000, stalled: 0, workers: 0, serverPid: 0,
		sensor: 'bench-screens', pushes: 5, interval: 0, duration: 30, settle: 2,
		timeout: 10, concurrency: 100, ring: 256, json: '', readyFile: '',
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length) die(`${a} needs a value`);
			return argv[++i];
		};
		const num = (min, max, integer = true) => {
			const s = val();
			const v = Number(s);
			if (s === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max)
				die(`${a} ${s}: not ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
			return v;
		};
		switch (a) {
		case 'idle': case 'load': o.mode = a; break;
		case '--url': o.url = val(); break;
		case '--key': o.key = val(); break;
		case '--token': o.token = val(); break;
		case '--screens': o.screens = num(1, 1000000); break;
		case '--stalled': o.stalled = num(0, 1000000); break;
		case '--workers': o.workers = num(1, 64); break;
		case '--server-pid': o.serverPid = num(1, 1 << 30); break;
		case '--sensor': o.sensor = val(); break;
		case '--pushes': o.pushes = num(1, 100000); break;
		case '--interval': o.interval = num(10, 600000); break;
		case '--duration': o.duration = num(0.1, 86400, false); break;
		case '--settle': o.settle = num(0, 3600, false); break;
		case '--timeout': o.timeout = num(0.1, 3600, false); break;
		case '--connect-concurrency': o.concurrency = num(1, 100000); break;
		case '--ring': o.ring = num(1, 1 << 20); break;
		case '--json': o.json = val(); break;
		case '--ready-file': o.readyFile = val(); break;
		case '-h': case '--help': console.log(USAGE); process.exit(0);
		default: die(`unknown argument ${a} (see --help)`);
		}
	}
	if (!o.mode) die('say idle or load (see --help)');
	if (!o.key) die('no key: give --key KEY or set KENDALI_KEY');
	if (o.stalled >= o.screens) die('--stalled must leave at least one screen that reads');
	if (!/^[A-Za-z0-9._:-]{1,64}$/.test(o.sensor)) die(`--sensor ${o.sensor}: not a sensor id`);
	let u;
	try {
		u = new URL(o.url);
	} catch {
		die(`--url ${o.url}: not a URL`);
	}
	if (u.protocol !== 'http:') die('--url: http:// only');
	o.base = `http://${u.host}`;
	o.wsUrl = `ws://${u.host}/ws`;
	o.hostname = u.hostname.replace(/^\[|\]$/g, '');
	o.port = Number(u.port || 80);
	if (!o.workers) o.workers = o.screens <= 2000 ? 1 : 2;
	o.workers = Math.min(o.workers, o.screens);
	if (!o.interval) o.interval = o.mode === 'idle' ? 1000 : 150;
	return o;
}

// The soft limit on open files of a process, from /proc.
function fdLimit(pid) {
	try {
		const t = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
		const m = /^Max open files\s+(\S+)/m.exec(t);
		return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : NaN;
	} catch {
		return NaN;
	}
}

function rssKiB(pid) {
	if (!pid) return NaN;
	try {
		const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
		return m ? Number(m[1]) : NaN;
	} catch {
		return NaN;
	}
}

// User + system CPU seconds of a process so far, from /proc/PID/stat.
function cpuSeconds(pid) {
	if (!pid) return NaN;
	try {
		const t = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
		// Fields 14 and 15 of stat(5), counted from the state (field 3).
		return (Number(f[11]) + Number(f[12])) / CLK_TCK;
	} catch {
		return NaN;
	}
}
const CLK_TCK = 100; // USER_HZ, 100 on every Linux port

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

// A request on the keep-alive connection.  The server may close that
// connection while idle just as a request goes out: one retry then (probes
// are idempotent: the same id comes back as a duplicate).
async function request(o, method, path, body, headers) {
	try {
		return await request1(o, method, path, body, headers);
	} catch (err) {
		if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') throw err;
		return request1(o, method, path, body, headers);
	}
}

function request1(o, method, path, body, headers) {
	return new Promise((resolve, reject) => {
		const req = http.request({
			host: o.hostname, port: o.port, method, path, agent,
			headers: body === undefined ? headers : {
				'Content-Type': 'application/json',
				'Content-Length': Buffer.byteLength(body),
				...headers,
			},
		}, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({
				status: res.statusCode, headers: res.headers,
				body: Buffer.concat(chunks).toString('utf8'), t: now(),
			}));
			res.on('error', reject);
		});
		req.setTimeout(30000, () => req.destroy(new Error('no answer in 30 s')));
		req.on('error', reject);
		req.end(body);
	});
}

// Which server this is, from the first message of one screen.
function detect(o) {
	return new Promise((resolve, reject) => {
		const headers = o.token ? { Authorization: `Bearer ${o.token}` } : {};
		const ws = new WebSocket(o.wsUrl, PROTOCOL, { headers, perMessageDeflate: false, handshakeTimeout: 5000 });
		const timer = setTimeout(() => {
			ws.terminate();
			reject(new Error('no snapshot within 5 s'));
		}, 5000);
		ws.on('message', (data) => {
			clearTimeout(timer);
			ws.close();
			let m;
			try {
				m = JSON.parse(data.toString('utf8'));
			} catch {
				reject(new Error('the first message is not JSON'));
				return;
			}
			const k = m.kpis || {};
			if ('sensors.latest' in k) resolve('kendali');
			else if ('events.total' in k) resolve('reference');
			else reject(new Error(`a first message of neither server: ${data.toString('utf8').slice(0, 200)}`));
		});
		ws.on('unexpected-response', (req, res) => {
			clearTimeout(timer);
			reject(new Error(`the upgrade was answered HTTP ${res.statusCode}`));
		});
		ws.on('error', (err) => {
			clearTimeout(timer);
			reject(err);
		});
		ws.on('close', () => {
			clearTimeout(timer);
			reject(new Error('closed before any message (kendali: --anonymous-loopback or --token?)'));
		});
	});
}

function percentile(sorted, p) {
	if (!sorted.length) return NaN;
	let i = Math.ceil(p * sorted.length) - 1;
	if (i < 0) i = 0;
	return sorted[Math.min(i, sorted.length - 1)];
}

function summary(values) {
	const s = Float64Array.from(values).sort();
	let sum = 0;
	for (const v of s) sum += v;
	return {
		n: s.length,
		p50: percentile(s, 0.5), p99: percentile(s, 0.99),
		max: s.length ? s[s.length - 1] : NaN, min: s.length ? s[0] : NaN,
		mean: s.length ? sum / s.length : NaN,
	};
}

const r3 = (v) => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null);

async function main() {
	const o = parseArgs(process.argv.slice(2));

	const need = o.screens + 64;
	const mine = fdLimit('self');
	if (mine < need)
		die(`${o.screens} screens need about ${need} open files and this process may open ${mine}; `
			+ `raise the limit first (ulimit -n ${Math.max(need, 1024)}; the hard limit is the ceiling)`);
	if (o.serverPid) {
		const theirs = fdLimit(o.serverPid);
		if (!Number.isFinite(rssKiB(o.serverPid))) die(`--server-pid ${o.serverPid}: no such process to read`);
		if (theirs < need)
			say(`warning: the server may open ${theirs} files, fewer than ${o.screens} screens need; `
				+ 'start it with a higher ulimit -n');
	}

	let kind;
	try {
		kind = await detect(o);
	} catch (err) {
		die(`cannot follow ${o.wsUrl}: ${err.message}`);
	}
	const run = Math.random().toString(16).slice(2, 10);
	// Probe values are base + probe number: unique to this run.
	const base = (1 + Math.floor(Math.random() * 8999)) * 1e6;
	const auth = { Authorization: `Bearer ${o.key}` };
	say(`${kind} at ${o.base}; ${o.screens} screens (${o.stalled} never read) in ${o.workers} thread(s); run ${run}`);

	if (kind === 'kendali') {
		const body = JSON.stringify({
			name: 'Screen simulator probe', metric: 'probe', unit: 'n',
			thresholds: { awas: 1e15 }, offline_after_s: 604800,
		});
		const r = await request(o, 'PUT', `/api/v1/sensors/${o.sensor}`, body, auth);
		if (r.status !== 200 && r.status !== 201)
			die(`registering sensor ${o.sensor}: HTTP ${r.status} ${r.body} (the key needs the sensor type)`);
	}

	let probeNo = 0;
	async function postProbe() {
		const k = probeNo++;
		const body = JSON.stringify({
			id: `scr-${run}-${k}`, type: 'sensor', occurred_at: new Date().toISOString(),
			sensor: { sensor_id: o.sensor, value: base + k },
		});
		const t0 = now();
		const r = await request(o, 'POST', '/api/v1/events', body, auth);
		if (r.status !== 202) die(`probe ${k}: HTTP ${r.status} ${r.body}`);
		let threshold = k;
		if (kind === 'reference') {
			threshold = Number(r.headers['x-events-total']);
			if (!Number.isFinite(threshold)) die('the reference server sent no X-Events-Total');
		}
		return { k, sent: t0, acked: r.t, threshold };
	}

	// The warm-up probe: the key works, and every screen's snapshot then
	// holds a probe of this run.
	await postProbe();
	await sleep(300);

	const rssBefore = rssKiB(o.serverPid);

	// ---- connect ----
	const workers = [];
	const per = Math.floor(o.screens / o.workers);
	const stalledPer = Math.floor(o.stalled / o.workers);
	const tConnect = now();
	const cpu0 = process.cpuUsage();
	const connected = [];
	for (let w = 0; w < o.workers; w++) {
		const count = per + (w < o.screens % o.workers ? 1 : 0);
		const stalled = stalledPer + (w < o.stalled % o.workers ? 1 : 0);
		const worker = new Worker(__filename, {
			workerData: {
				count, stalled, kind, sensor: o.sensor, base, wsUrl: o.wsUrl,
				token: o.token, concurrency: o.concurrency, ring: o.ring,
			},
		});
		worker.on('error', (err) => die(`screen thread ${w}: ${err.stack || err}`));
		const entry = { worker, done: new Set(), result: null };
		connected.push(new Promise((resolve) => {
			worker.on('message', (m) => {
				if (m.type === 'connected') resolve(m);
				else if (m.type === 'done') entry.done.add(m.probe);
				else if (m.type === 'result') entry.result = m;
			});
		}));
		workers.push(entry);
	}
	const conn = await Promise.all(connected);
	const ready = conn.reduce((s, m) => s + m.ready, 0);
	const failed = conn.reduce((s, m) => s + m.failed, 0);
	const connectS = (now() - tConnect) / 1000;
	say(`${ready} screens connected in ${connectS.toFixed(2)} s, ${failed} failed`);
	if (failed && kind === 'kendali')
		say('(kendali limits connections per address: --max-conns-per-ip 0, and needs --anonymous-loopback or --token)');
	if (!ready) die('no screen connected');
	if (o.readyFile) fs.writeFileSync(o.readyFile, `${ready}\n`);

	await sleep(o.settle * 1000);
	const rssConnected = rssKiB(o.serverPid);
	// kendali counts its screens in /metrics (from this machine).
	async function serverMetric(name) {
		if (kind !== 'kendali') return null;
		try {
			const m = await request(o, 'GET', '/metrics');
			const x = new RegExp(`^${name} (\\S+)`, 'm').exec(m.body);
			return x ? Number(x[1]) : null;
		} catch {
			return null;
		}
	}
	const serverScreens = () => serverMetric('kendali_ws_clients');
	// kendali times its own fan-outs: from a message to the last screen's
	// turn (heartbeat and ping rounds included).
	const fanOut = async () => ({
		s: await serverMetric('kendali_ws_push_seconds_sum'),
		n: await serverMetric('kendali_ws_push_seconds_count'),
	});
	const serverClients = await serverScreens();
	const fanOutMark = await fanOut();

	// ---- probes ----
	for (const e of workers) e.worker.postMessage({ type: 'mark' });
	const cpuMark = process.cpuUsage();
	const serverCpuMark = cpuSeconds(o.serverPid);
	const tMark = now();
	const probes = [];
	const announce = (p) => {
		for (const e of workers) e.worker.postMessage({ type: 'probe', probe: probes.length, threshold: p.threshold });
		probes.push(p);
	};
	// Intervals drawn from [0.5, 1.5) times the mean, so that probes fall
	// at every phase of a server's periodic publishing.
	const jitter = (ms) => ms * (0.5 + Math.random());
	const allDone = (j) => workers.every((e) => e.done.has(j));
	async function waitDone(j) {
		const limit = now() + o.timeout * 1000;
		while (now() < limit) {
			if (j < 0 || allDone(j)) return true;
			await sleep(5);
		}
		return false;
	}

	if (o.mode === 'idle') {
		for (let i = 0; i < o.pushes; i++) {
			await sleep(jitter(o.interval));
			const p = await postProbe();
			announce(p);
			if (!(await waitDone(probes.length - 1)))
				say(`push ${i + 1}: not on every reading screen after ${o.timeout} s`);
		}
	} else {
		const end = now() + o.duration * 1000;
		let due = now();
		while (due < end) {
			const wait = due - now();
			if (wait > 0) await sleep(wait);
			announce(await postProbe());
			due += jitter(o.interval);
			// Probes go one at a time: one that is due while the previous
			// is unanswered goes as soon as that answer is in.
			if (due < now()) due = now();
		}
		if (!(await waitDone(probes.length - 1)))
			say(`the last probe was not on every reading screen after ${o.timeout} s`);
	}
	const tEnd = now();
	const cpuRun = process.cpuUsage(cpuMark);
	const rssAfter = rssKiB(o.serverPid);
	const serverCpu = cpuSeconds(o.serverPid) - serverCpuMark;
	const serverClientsEnd = await serverScreens();
	const fanOutEnd = await fanOut();
	const fanOuts = fanOutEnd.n !== null && fanOutMark.n !== null ? fanOutEnd.n - fanOutMark.n : 0;
	const fanOutMeanMs = fanOuts > 0 ? (1000 * (fanOutEnd.s - fanOutMark.s)) / fanOuts : null;

	// ---- results ----
	const results = await Promise.all(workers.map((e) => new Promise((resolve) => {
		const t = setInterval(() => {
			if (e.result) {
				clearInterval(t);
				resolve(e.result);
			}
		}, 5);
		e.worker.postMessage({ type: 'finish', drainMs: 1500 });
	})));
	const cpuAll = process.cpuUsage(cpu0);

	const c = {
		messages: 0, bytes: 0, gaps: 0, resyncs: 0, imprecise: 0, stalled_messages: 0,
		connect_failed: 0, closed_reading: 0, closed_stalled: 0, close_codes: {}, fail_reasons: {},
	};
	for (const r of results) {
		for (const [k, v] of Object.entries(r.counters)) {
			if (typeof v === 'number') c[k] += v;
			else for (const [kk, vv] of Object.entries(v)) c[k][kk] = (c[k][kk] || 0) + vv;
		}
	}
	const delays = [];
	const perProbe = [];
	let missing = 0;
	for (let j = 0; j < probes.length; j++) {
		const p = probes[j];
		const d = [];
		for (const r of results) {
			for (const t of r.times[j]) {
				if (Number.isNaN(t)) missing++;
				else d.push(t - p.acked);
			}
		}
		for (const v of d) delays.push(v);
		const s = summary(d);
		perProbe.push({
			ack_ms: p.acked - p.sent, reached: s.n, first_ms: s.min, p50_ms: s.p50,
			p99_ms: s.p99, last_ms: s.max, spread_ms: s.max - s.min,
		});
	}
	const all = summary(delays);
	const ack = summary(probes.map((p) => p.acked - p.sent));
	const last = summary(perProbe.map((p) => p.last_ms));
	const spread = summary(perProbe.map((p) => p.spread_ms));
	const elu = results.map((r) => r.elu);
	const runS = (tEnd - tMark) / 1000;
	const cpuS = (cpuRun.user + cpuRun.system) / 1e6;
	const perConn = (a, b) => (Number.isFinite(a) && Number.isFinite(b) ? (b - a) / ready : NaN);

	const out = {
		mode: o.mode, server: kind, url: o.base, run,
		screens: o.screens, stalled: o.stalled, workers: o.workers,
		connected: ready, connect_failed: failed, connect_s: r3(connectS),
		server_ws_clients: serverClients, server_ws_clients_end: serverClientsEnd,
		server_fan_outs: fanOuts, server_fan_out_mean_ms: fanOutMeanMs === null ? null : r3(fanOutMeanMs),
		rss_before_kib: r3(rssBefore), rss_connected_kib: r3(rssConnected), rss_after_kib: r3(rssAfter),
		kib_per_connection: r3(perConn(rssBefore, rssConnected)),
		kib_per_connection_after: r3(perConn(rssBefore, rssAfter)),
		probes: probes.length, interval_ms: o.interval, measured_s: r3(runS),
		deliveries: all.n, missing,
		delay_p50_ms: r3(all.p50), delay_p99_ms: r3(all.p99), delay_max_ms: r3(all.max),
		delay_min_ms: r3(all.min), delay_mean_ms: r3(all.mean),
		reach_all_p50_ms: r3(last.p50), reach_all_p99_ms: r3(last.p99), reach_all_max_ms: r3(last.max),
		spread_p50_ms: r3(spread.p50), spread_max_ms: r3(spread.max),
		probe_ack_p50_ms: r3(ack.p50), probe_ack_p99_ms: r3(ack.p99), probe_ack_max_ms: r3(ack.max),
		closed_reading: c.closed_reading, closed_stalled: c.closed_stalled,
		close_codes: c.close_codes, connect_errors: c.fail_reasons,
		messages: c.messages, message_bytes: c.bytes, seq_gaps: c.gaps, resync_snapshots: c.resyncs,
		stalled_messages: c.stalled_messages, imprecise: c.imprecise,
		server_cpu_s: r3(serverCpu), server_cpu_share: r3(serverCpu / runS),
		client_cpu_s: r3(cpuS), client_cpu_share: r3(cpuS / runS),
		client_cpu_total_s: r3((cpuAll.user + cpuAll.system) / 1e6),
		client_loop_busy: elu.map(r3),
		cpus: os.cpus().length,
		per_probe: perProbe.map((p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, r3(v)]))),
	};

	const f = (v, w = 10) => (v === null || v === undefined ? '-' : String(v)).padStart(w);
	const lines = [
		`${o.mode} run ${run} on ${kind}: ${ready} screens (${o.stalled} never read), ${probes.length} probes over ${runS.toFixed(1)} s`,
		`  server RSS KiB            ${f(out.rss_before_kib)} before, ${f(out.rss_connected_kib)} connected, ${f(out.rss_after_kib)} after`,
		`  KiB per connection       ${f(out.kib_per_connection)} connected, ${f(out.kib_per_connection_after)} after the probes`,
		`                                 p50        p99        max`,
		`  event-to-screen ms       ${f(out.delay_p50_ms)} ${f(out.delay_p99_ms)} ${f(out.delay_max_ms)}   (${all.n} deliveries, ${missing} missing)`,
		`  probe on all screens ms  ${f(out.reach_all_p50_ms)} ${f(out.reach_all_p99_ms)} ${f(out.reach_all_max_ms)}`,
		`  first-to-last screen ms  ${f(out.spread_p50_ms)} ${f('')} ${f(out.spread_max_ms)}`,
		`  probe 202 ms             ${f(out.probe_ack_p50_ms)} ${f(out.probe_ack_p99_ms)} ${f(out.probe_ack_max_ms)}`,
		`  screens closed           ${c.closed_reading} reading, ${c.closed_stalled} never reading, by code ${JSON.stringify(c.close_codes)}`,
		`  messages                 ${c.messages} (${c.bytes} bytes), ${c.gaps} seq gaps, ${c.resyncs} resync snapshots`,
		`  client CPU               ${out.client_cpu_s} s (${(100 * out.client_cpu_share).toFixed(0)}% of one core), `
			+ `threads busy ${elu.map((v) => `${(100 * v).toFixed(0)}%`).join(' ')}`,
	];
	if (serverClients !== null)
		lines.splice(3, 0, `  server's screen count    ${f(serverClients)} connected, ${f(serverClientsEnd)} at the end`);
	if (fanOutMeanMs !== null)
		lines.push(`  server's fan-out, mean   ${f(r3(fanOutMeanMs))} ms over ${fanOuts} fan-outs (its own clock)`);
	if (!o.serverPid) lines.splice(1, 2); // no RSS to show
	if (Number.isFinite(serverCpu))
		lines.push(`  server CPU               ${r3(serverCpu)} s (${(100 * serverCpu / runS).toFixed(0)}% of one core)`);
	if (c.imprecise) lines.push(`  note: ${c.imprecise} deliveries matched past --ring; their delay is an upper bound`);
	console.log(lines.join('\n'));
	if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(out, null, 2)}\n`);
	agent.destroy();
	process.exit(0);
}

if (isMainThread) {
	main().catch((err) => die(err.stack || String(err)));
} else {
	workerMain();
}
