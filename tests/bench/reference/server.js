#!/usr/bin/env node
// The benchmark's reference stack: the command centre's ingest and live
// screens written the way many teams would write them in Node.js, as a
// floor to compare kendali with.  It is not a second implementation of
// kendali; README.md in this directory says what it leaves out.
//
//   DATABASE_URL=postgresql://... REF_KEY=secret node server.js [options]
//
// It speaks the subset of kendali's HTTP API that the load generator and the
// screen simulator use:
//
//   POST /api/v1/events   Authorization: Bearer <key>; a JSON object or an
//                         array of events (or NDJSON); each event INSERTed
//                         on its own (autocommit) into ref_events; 202
//                         {"accepted":n,"duplicates":m} once all are done
//   GET  /readyz          200 when the database answers
//   GET  /healthz         200
//   /ws                   websocket, subprotocol situation.v1: a snapshot on
//                         connect, then after every accepted request a kpis
//                         message with the new events.total to every socket
'use strict';

const http = require('node:http');
const { Pool } = require('pg');
const { WebSocketServer, WebSocket } = require('ws');

const USAGE = `usage: node server.js [options]

  --listen HOST:PORT   address to listen on (default 127.0.0.1:8090)
  --key KEY            the one API key accepted (else $REF_KEY)
  --pool N             PostgreSQL connections (default 10)
  --table NAME         the events table (default ref_events; created
                       LIKE events INCLUDING ALL when missing)
  --reset              empty the table at start-up
  --max-body BYTES     largest request body (default 1048576)
  --max-batch N        most events per request (default 1000)

The database is taken from DATABASE_URL; it must hold kendali's schema
(kendali migrate), whose events table gives ref_events its shape.`;

function parseArgs(argv) {
	const o = {
		listen: '127.0.0.1:8090',
		key: process.env.REF_KEY || '',
		pool: 10,
		table: 'ref_events',
		reset: false,
		maxBody: 1 << 20,
		maxBatch: 1000,
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length) fail(`${a} needs a value`);
			return argv[++i];
		};
		const int = (min, max) => {
			const s = val();
			const n = Number(s);
			if (!/^[0-9]+$/.test(s) || n < min || n > max)
				fail(`${a} ${s}: not an integer from ${min} to ${max}`);
			return n;
		};
		switch (a) {
		case '--listen': o.listen = val(); break;
		case '--key': o.key = val(); break;
		case '--pool': o.pool = int(1, 1000); break;
		case '--table': o.table = val(); break;
		case '--reset': o.reset = true; break;
		case '--max-body': o.maxBody = int(1024, 64 << 20); break;
		case '--max-batch': o.maxBatch = int(1, 100000); break;
		case '-h': case '--help': console.log(USAGE); process.exit(0);
		default: fail(`unknown option ${a}`);
		}
	}
	const m = /^(.+):([0-9]+)$/.exec(o.listen);
	if (!m) fail(`--listen ${o.listen}: give HOST:PORT`);
	o.host = m[1];
	o.port = Number(m[2]);
	if (!o.key) fail('no key: give --key KEY or set REF_KEY');
	if (!/^[a-z_][a-z0-9_]*$/.test(o.table))
		fail(`--table ${o.table}: a plain lower-case identifier, please`);
	if (!process.env.DATABASE_URL) fail('set DATABASE_URL');
	return o;
}

function fail(msg) {
	console.error(`reference: ${msg}`);
	process.exit(2);
}

const opt = parseArgs(process.argv.slice(2));
const pool = new Pool({
	connectionString: process.env.DATABASE_URL,
	max: opt.pool,
});
pool.on('error', (err) => console.error(`reference: idle client: ${err.message}`));

// ---- ingest ----

const TYPES = new Set(['call', 'report', 'sensor']);
const STATUS = {
	call: new Set(['received', 'answered', 'closed', 'abandoned']),
	report: new Set(['received', 'dispatched', 'in_progress', 'resolved', 'rejected']),
};
const SUBJECT = { call: 'call_id', report: 'ticket', sensor: 'sensor_id' };

let insertSql;
let total = 0; // events stored since the table was created (or reset)
let seq = 0; // of the last broadcast

class Problem extends Error {
	constructor(status, code, detail, extra) {
		super(detail);
		this.status = status;
		this.code = code;
		this.extra = extra || {};
	}
}

const TITLES = {
	400: 'Malformed body', 401: 'Unauthorized', 404: 'Not found',
	405: 'Method not allowed', 411: 'Length required', 413: 'Too large',
	415: 'Unsupported media type', 422: 'Invalid event',
	500: 'Internal error', 503: 'Unavailable',
};

function sendJson(res, status, obj, headers) {
	const body = JSON.stringify(obj);
	res.writeHead(status, {
		'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json',
		'Content-Length': Buffer.byteLength(body),
		'Cache-Control': 'no-store',
		...headers,
	});
	res.end(body);
}

function sendProblem(res, p) {
	sendJson(res, p.status, {
		type: `/problems/${p.code}`,
		title: TITLES[p.status] || 'Error',
		status: p.status,
		detail: p.message,
		code: p.code,
		...p.extra,
	});
}

function isString(v, max) {
	return typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= max;
}

// Minimal checks: enough to store a row of the events table's shape, far
// less than kendali's rules (docs/api.md, section 3).
function toRow(ev, index) {
	const bad = (field, why) => {
		throw new Problem(422, 'invalid_event', `${field}: ${why}`, { index, field });
	};
	if (ev === null || typeof ev !== 'object' || Array.isArray(ev))
		throw new Problem(422, 'invalid_event', 'an event must be an object', { index });
	if (!isString(ev.id, 128)) bad('id', 'a string of 1 to 128 bytes');
	if (!TYPES.has(ev.type)) bad('type', 'call, report or sensor');
	if (typeof ev.occurred_at !== 'string' || Number.isNaN(Date.parse(ev.occurred_at)))
		bad('occurred_at', 'an RFC 3339 time');
	const body = ev[ev.type];
	if (body === null || typeof body !== 'object') bad(ev.type, 'required');
	const subject = body[SUBJECT[ev.type]];
	if (!isString(subject, 64)) bad(`${ev.type}.${SUBJECT[ev.type]}`, 'a string of 1 to 64 bytes');
	let status = null;
	let value = null;
	if (ev.type === 'sensor') {
		value = body.value;
		if (typeof value !== 'number' || !Number.isFinite(value))
			bad('sensor.value', 'a finite number');
	} else {
		status = body.status;
		if (!STATUS[ev.type].has(status)) bad(`${ev.type}.status`, 'not a known status');
	}
	const loc = ev.location && typeof ev.location === 'object' ? ev.location : {};
	const str = (v) => (typeof v === 'string' ? v : null);
	const num = (v) => (typeof v === 'number' ? v : null);
	return [
		ev.id, ev.type, ev.occurred_at, subject, status,
		str(body.category), str(ev.district), str(body.agency), str(body.title),
		value, num(loc.lat), num(loc.lon),
	];
}

function parseEvents(req, raw) {
	const ctype = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
	let events;
	if (ctype === 'application/json') {
		try {
			events = JSON.parse(raw);
		} catch (err) {
			throw new Problem(400, 'bad_json', `the body is not JSON: ${err.message}`);
		}
		if (!Array.isArray(events)) events = [events];
	} else if (ctype === 'application/x-ndjson') {
		events = [];
		for (const line of raw.split('\n')) {
			if (!line.trim()) continue;
			try {
				events.push(JSON.parse(line));
			} catch (err) {
				throw new Problem(400, 'bad_json', `a line is not JSON: ${err.message}`);
			}
		}
	} else {
		throw new Problem(415, 'unsupported_media_type', 'send application/json or application/x-ndjson');
	}
	if (events.length === 0) throw new Problem(422, 'invalid_event', 'the request has no events');
	if (events.length > opt.maxBatch)
		throw new Problem(413, 'too_large', `at most ${opt.maxBatch} events a request`);
	return events.map(toRow);
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let size = 0;
		req.on('data', (c) => {
			size += c.length;
			if (size > opt.maxBody) {
				// The rest is read and dropped, so that the answer gets out.
				req.removeAllListeners('data');
				req.resume();
				reject(new Problem(413, 'too_large', `the body is over ${opt.maxBody} bytes`));
				return;
			}
			chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
		req.on('error', reject);
	});
}

async function postEvents(req, res) {
	if (req.headers.authorization !== `Bearer ${opt.key}`)
		throw new Problem(401, 'unauthorized', 'give the key as Authorization: Bearer <key>');
	const rows = parseEvents(req, await readBody(req));
	let accepted = 0;
	// One INSERT per event, each its own transaction, one after the other.
	for (const row of rows) {
		let r;
		try {
			r = await pool.query(insertSql, row);
		} catch (err) {
			console.error(`reference: insert failed: ${err.message}`);
			throw new Problem(503, 'unavailable', 'the database did not take the event');
		}
		accepted += r.rowCount;
	}
	total += accepted;
	// The running total after this request's events: screens.js uses it to
	// know which websocket message is the first to include them.
	sendJson(res, 202, { accepted, duplicates: rows.length - accepted },
		{ 'X-Events-Total': String(total) });
	if (accepted > 0) broadcast();
}

// ---- screens ----

const wss = new WebSocketServer({
	noServer: true,
	handleProtocols: (protocols) => (protocols.has('situation.v1') ? 'situation.v1' : false),
});

function message(type) {
	return JSON.stringify({
		seq, type, at: new Date().toISOString(), kpis: { 'events.total': total },
	});
}

function broadcast() {
	seq++;
	const text = message('kpis');
	for (const ws of wss.clients) {
		if (ws.readyState === WebSocket.OPEN) ws.send(text);
	}
}

wss.on('connection', (ws) => {
	ws.on('error', () => {});
	ws.send(message('snapshot'));
});

// ---- HTTP ----

const server = http.createServer(async (req, res) => {
	const path = req.url.split('?')[0];
	try {
		if (path === '/api/v1/events') {
			if (req.method !== 'POST') throw new Problem(405, 'method_not_allowed', 'use POST');
			await postEvents(req, res);
		} else if (path === '/healthz') {
			sendJson(res, 200, { status: 'ok' });
		} else if (path === '/readyz') {
			try {
				await pool.query('SELECT 1');
				sendJson(res, 200, { status: 'ready' });
			} catch (err) {
				throw new Problem(503, 'unavailable', `database: ${err.message}`);
			}
		} else {
			throw new Problem(404, 'not_found', `nothing at ${path}`);
		}
	} catch (err) {
		if (!(err instanceof Problem)) {
			console.error(`reference: ${err.stack || err}`);
			err = new Problem(500, 'internal', 'the server failed');
		}
		if (!res.headersSent && !res.destroyed) sendProblem(res, err);
	}
});
server.keepAliveTimeout = 30000;

server.on('upgrade', (req, socket, head) => {
	if (req.url.split('?')[0] !== '/ws') {
		socket.destroy();
		return;
	}
	wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

async function main() {
	const t = opt.table;
	const have = await pool.query("SELECT to_regclass('events') IS NOT NULL AS ok");
	if (!have.rows[0].ok) fail('no events table in this database: run kendali migrate first');
	await pool.query(`CREATE TABLE IF NOT EXISTS ${t} (LIKE events INCLUDING ALL)`);
	if (opt.reset) await pool.query(`TRUNCATE ${t}`);
	total = Number((await pool.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
	insertSql = `INSERT INTO ${t} (tenant, poster, event_id, type, occurred_at,
		subject, status, category, district, agency, title, value, lat, lon)
		VALUES ('semarang', 'reference', $1, $2, $3, $4, $5, $6, $7, $8, $9,
			$10, $11, $12)
		ON CONFLICT DO NOTHING`;
	server.listen(opt.port, opt.host, () => {
		console.error(`reference: listening on http://${opt.host}:${opt.port}, `
			+ `table ${t} (${total} events), pool ${opt.pool}`);
	});
}

function stop() {
	console.error('reference: stopping');
	for (const ws of wss.clients) ws.terminate();
	server.close();
	server.closeAllConnections();
	pool.end().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

main().catch((err) => fail(err.message));
