// The abuse generator of `npm run soak -- --abuse`, run as its own process so that its work
// (thousands of sockets, trickled bytes) does not share an event loop with the vendor traffic
// whose latency is measured. Driven over IPC by bench/abuse/run.ts:
//   {start: {port, tokens, maxBodyBytes}}  begin the request-level abuse
//   {hold: n}                             keep n abusive connections open
//   {stopNew: true}                       open no more, send no more (open ones stay)
//   {stats: true} -> {stats}              figures so far
//   {end: true}   -> {stats, leftOpen}    close what is left and exit
import { ConnectionAbuse } from './connections.ts';
import { RequestAbuse } from './requests.ts';

interface Start {
  port: number;
  tokens: { abuser: string; burster: string; uploader: string };
  maxBodyBytes: number;
}
type Message = { start: Start } | { hold: number } | { stopNew: true } | { stats: true } | { end: true };

let conns: ConnectionAbuse | undefined;
let reqs: RequestAbuse | undefined;

const stats = (): unknown => ({
  connections: { ...conns!.stats, closedBy: Object.fromEntries(conns!.stats.closedBy), open: conns!.open },
  requests: { ...reqs!.stats, byStatus: Object.fromEntries(reqs!.stats.byStatus), inFlight: reqs!.inFlight },
});

process.on('message', (m: Message) => {
  if ('start' in m) {
    conns = new ConnectionAbuse(m.start.port, m.start.tokens.abuser);
    reqs = new RequestAbuse(`http://127.0.0.1:${m.start.port}`, m.start.tokens, m.start.maxBodyBytes);
    process.send!({ started: true });
  } else if ('hold' in m) {
    conns!.hold(m.hold);
  } else if ('stopNew' in m) {
    conns!.hold(0);
    reqs!.stop();
  } else if ('stats' in m) {
    process.send!({ stats: stats() });
  } else if ('end' in m) {
    const leftOpen = conns!.stop();
    reqs!.stop();
    reqs!.close();
    process.send!({ stats: stats(), leftOpen }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
