// What the room sends, read and applied: the welcome (who we are, the state or a resume), whole
// states, batches applied with the same reducer the server uses (a gap asks for a resync rather
// than guessing), replies matched to their requests, relayed voice frames and clock pongs — each
// raised as the typed event a page subscribes to (events.ts).
import { readServerFrame } from '../../../core/rooms/room-wire.ts';
import type { Member, Presence, RoomSnapshot, ServerMessage } from '../../../core/rooms/room-protocol.ts';
import { applyEvents } from '../../../core/rooms/room-state.ts';
import { clockSample } from '../../../core/rooms/room-clock.ts';
import { RoomConnection, RoomError } from './connection.ts';

export abstract class RoomDispatch extends RoomConnection {
  private resyncing = false;
  /** Room − local clock (ms) as the welcome said it, until the first pong gives a better one. */
  protected fallbackOffset = 0;

  protected override onFrame(text: string): void {
    const msg = readServerFrame(text);
    if (!msg) return;
    switch (msg.type) {
      case 'welcome': {
        this.you = msg.you;
        if (msg.session) this.session = msg.session;
        this.fallbackOffset = msg.serverTime - this.nowFn();
        this.attempt = 0;
        if (msg.resumed) {
          this.epoch = msg.epoch;
          this.seq = msg.seq;
        } else if (msg.state) {
          this.replaceState(msg.epoch, msg.seq, msg.state);
        }
        this.emit('open', { you: msg.you, resumed: msg.resumed });
        for (const w of this.openWaiters.splice(0)) w.resolve();
        this.startPings();
        return;
      }
      case 'state':
        this.replaceState(msg.epoch, msg.seq, msg.state);
        return;
      case 'batch':
        this.onBatch(msg);
        return;
      case 'ack':
        if (msg.rid) this.settle(msg.rid, null, msg.id);
        return;
      case 'error':
        if (msg.rid && this.pending.has(msg.rid)) this.settle(msg.rid, new RoomError(msg.code, msg.reason));
        else this.emit('error', { code: msg.code, reason: msg.reason });
        return;
      case 'voice.signal':
        this.emit('voice.signal', { from: msg.from, uid: msg.uid, signal: msg.signal });
        return;
      case 'voice.sfu':
        this.emit('voice.sfu', { endpoint: msg.endpoint, token: msg.token, expiresAt: msg.expiresAt });
        return;
      case 'pong': {
        const s = clockSample(msg.t0, msg.t1, msg.t2, this.nowFn());
        this.clockEst.add(s);
        const est = this.clockEst.estimate();
        if (est) this.emit('clock', est);
        return;
      }
    }
  }

  private replaceState(epoch: string, seq: number, state: RoomSnapshot): void {
    this.epoch = epoch;
    this.seq = seq;
    this.resyncing = false;
    const before = this.state?.presence;
    this.state = state;
    this.emit('state', state);
    this.emit('voice', state.voice);
    if (before) this.emit('presence', { ...state.presence, ...diffMembers(before, state.presence) });
  }

  private onBatch(b: Extract<ServerMessage, { type: 'batch' }>): void {
    if (this.state === null || this.resyncing) return;
    if (b.epoch === this.epoch && b.seq <= this.seq) return; // already have it
    // A merged frame covers batches `from`..`seq`; it must start right after what we have.
    if (b.epoch !== this.epoch || (b.from ?? b.seq) !== this.seq + 1) {
      // A gap: ask for the whole state rather than guess.
      this.resyncing = true;
      this.sendRaw({ type: 'resync' });
      return;
    }
    const before = this.state;
    this.state = applyEvents(before, b.events);
    this.seq = b.seq;
    for (const ev of b.events) {
      switch (ev.kind) {
        case 'chat':
          this.emit('chat', ev.message);
          break;
        case 'chat.delete':
          this.emit('chat.delete', { id: ev.id });
          break;
        case 'reactions':
          this.emit('reactions', ev.counts);
          break;
        case 'host.reaction':
          this.emit('host.reaction', { reaction: ev.reaction, pdt: ev.pdt, name: ev.name });
          break;
        case 'poll':
          this.emit('poll', ev.poll);
          break;
        case 'presence':
          this.emit('presence', { ...ev.presence, ...diffMembers(before.presence, ev.presence) });
          break;
        case 'playback':
          this.emit('playback', ev.playback);
          break;
        case 'slow':
          this.emit('slow', { seconds: ev.seconds });
          break;
        case 'settings':
          this.emit('settings', { anonymous: ev.anonymous });
          break;
      }
    }
    if (b.events.some((ev) => ev.kind.startsWith('voice'))) this.emit('voice', this.state.voice);
    this.emit('batch', { seq: b.seq, t: b.t, events: b.events });
  }
}

function diffMembers(before: Presence, after: Presence): { joined: Member[]; left: Member[] } {
  if (!before.members || !after.members) return { joined: [], left: [] };
  const was = new Map(before.members.map((m) => [m.uid, m]));
  const now = new Map(after.members.map((m) => [m.uid, m]));
  return {
    joined: after.members.filter((m) => !was.has(m.uid)),
    left: before.members.filter((m) => !now.has(m.uid)),
  };
}
