#!/usr/bin/env node
// Holds websocket screens on kendali's /ws, each with the next screen token
// of a list in turn (so spread over the tokens' tenants), reading and
// counting what they are sent, until SIGTERM; then prints one JSON line:
// {"screens", "connected", "messages", "bytes", "closed"}.
// The bystanders of tests/bench/tenants.sh: the screens of the tenants that
// the screen simulator (screens.js) does not probe.
//
//   node hold.js --url URL --tokens FILE --screens N [--ready-file FILE]
'use strict';
const fs = require('node:fs');
const WebSocket = require('ws');

const PROTOCOL = 'situation.v1';

function die(msg) {
	console.error(`hold: error: ${msg}`);
	process.exit(1);
}

function parseArgs(argv) {
	const o = { url: '', tokens: '', screens: 0, readyFile: '', concurrency: 100 };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length) die(`${a} needs a value`);
			return argv[++i];
		};
		switch (a) {
		case '--url': o.url = val(); break;
		case '--tokens': o.tokens = val(); break;
		case '--screens': o.screens = Number(val()); break;
		case '--ready-file': o.readyFile = val(); break;
		default: die(`unknown option ${a}`);
		}
	}
	if (!/^http:\/\//.test(o.url)) die('--url http://HOST:PORT is needed');
	if (!Number.isInteger(o.screens) || o.screens < 0) die('--screens N (0 or more)');
	return o;
}

async function main() {
	const o = parseArgs(process.argv.slice(2));
	const tokens = fs.readFileSync(o.tokens, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
	if (!tokens.length) die(`no token in ${o.tokens}`);
	const wsUrl = o.url.replace(/^http/, 'ws') + '/ws';
	const count = { screens: o.screens, connected: 0, messages: 0, bytes: 0, closed: 0 };
	const sockets = [];
	let next = 0;
	let settled = 0;

	await new Promise((resolve) => {
		if (!o.screens) resolve();
		const open = () => {
			if (next >= o.screens) return;
			const i = next++;
			const ws = new WebSocket(wsUrl, PROTOCOL, {
				headers: { Authorization: `Bearer ${tokens[i % tokens.length]}` },
				perMessageDeflate: false,
				handshakeTimeout: 15000,
			});
			sockets.push(ws);
			let done = false;
			const settle = (ok) => {
				if (done) return;
				done = true;
				if (ok) count.connected++;
				if (++settled === o.screens) resolve();
				else open();
			};
			ws.on('open', () => settle(true));
			ws.on('message', (data) => {
				count.messages++;
				count.bytes += data.length;
			});
			ws.on('error', () => settle(false));
			ws.on('close', () => {
				if (done) count.closed++;
				settle(false);
			});
		};
		for (let k = 0; k < o.concurrency; k++) open();
	});
	if (o.readyFile) fs.writeFileSync(o.readyFile, `${count.connected}\n`);
	process.on('SIGTERM', () => {
		console.log(JSON.stringify(count));
		for (const ws of sockets) ws.terminate();
		process.exit(0);
	});
	setInterval(() => {}, 1 << 30);
}

main().catch((e) => die(e.stack || String(e)));
