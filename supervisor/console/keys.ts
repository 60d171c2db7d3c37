/**
 * Keys: raw terminal input split into key names, and what each key does to
 * the console's state. A key never talks to the node itself; it returns
 * effects (restart, approve, trace, quit …) that console.ts carries out, so
 * this file is pure and unit tested.
 */
import {
  invertSort,
  movePick,
  moveSelection,
  PANES,
  parseTraceInput,
  pickedRow,
  resolveId,
  say,
  stepSort,
} from './model.js';
import type { Confirmable, ConsoleState } from './model.js';
import { shortId } from './cells.js';

export type Key =
  | 'up'
  | 'down'
  | 'left'
  | 'right'
  | 'tab'
  | 'enter'
  | 'backspace'
  | 'escape'
  | 'ctrl-c'
  | 'pageup'
  | 'pagedown'
  /** One printable character. */
  | string;

export type Effect =
  | { type: 'quit' }
  | { type: 'restart'; actor: string }
  | { type: 'kill'; actor: string }
  | { type: 'approve'; subscription: string }
  | { type: 'revoke'; target: string }
  | { type: 'trace'; actor: string; count: number; ms: number }
  | { type: 'traceStop' }
  /** Open (or refresh) the inspect view of an actor. */
  | { type: 'inspect'; actor: string };

/** What a trace prompt left empty means: the next 100 messages, for at most 10 s. */
export const TRACE_DEFAULTS = { count: 100, ms: 10_000 };

const SEQUENCES: Record<string, Key> = {
  '\x1b[A': 'up',
  '\x1b[B': 'down',
  '\x1b[C': 'right',
  '\x1b[D': 'left',
  // Application cursor mode (some terminals, tmux with it on).
  '\x1bOA': 'up',
  '\x1bOB': 'down',
  '\x1bOC': 'right',
  '\x1bOD': 'left',
  '\x1b[5~': 'pageup',
  '\x1b[6~': 'pagedown',
};

/**
 * Split one read from a raw-mode terminal into keys. A read may hold many
 * keys (typing fast, a paste) or one escape sequence; an escape sequence we
 * do not know is dropped whole rather than read as letters.
 */
export function parseKeys(chunk: string): Key[] {
  const keys: Key[] = [];
  let i = 0;
  while (i < chunk.length) {
    const c = chunk[i]!;
    if (c === '\x1b') {
      // CSI (ESC [ params final) or SS3 (ESC O final), after the ESC at i.
      const seq = /^(\[[0-9;]*[A-Za-z~]|O[A-Za-z])/.exec(chunk.slice(i + 1));
      if (seq) {
        const known = SEQUENCES[`\x1b${seq[0]}`];
        if (known) keys.push(known);
        i += 1 + seq[0].length;
      } else {
        keys.push('escape');
        i += 1;
      }
      continue;
    }
    if (c === '\x03') keys.push('ctrl-c');
    else if (c === '\t') keys.push('tab');
    else if (c === '\r' || c === '\n') keys.push('enter');
    else if (c === '\x7f' || c === '\b') keys.push('backspace');
    else if (c >= ' ') keys.push(c);
    i += 1;
  }
  return keys;
}

/** Apply one key to the state; returns what the console must do about it. */
export function handleKey(state: ConsoleState, key: Key, now: number): Effect[] {
  // Ctrl-C always leaves, even from a prompt: it is what an operator presses to get out.
  if (key === 'ctrl-c') return [{ type: 'quit' }];
  if (state.prompt) return promptKey(state, key, now);
  // The help screen: any key closes it (and does nothing else).
  if (state.help) {
    state.help = false;
    return [];
  }
  if (state.inspect && (key === 'escape' || key === 'enter' || key === 'backspace')) {
    state.inspect = null;
    return [];
  }
  switch (key) {
    case 'q':
      return [{ type: 'quit' }];
    case '?':
    case 'h':
      state.help = true;
      return [];
    case 'enter':
      if (!state.selected || !state.connected) return [];
      state.inspect = { actor: state.selected, result: null, error: null, at: now };
      return [{ type: 'inspect', actor: state.selected }];
    case '[':
    case ']':
      if (state.pane !== 'grants') {
        say(state, 'rows are picked in the grants pane (3)', now);
        return [];
      }
      movePick(state, key === ']' ? 1 : -1);
      return [];
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
      state.pane = PANES[Number(key) - 1]!;
      return [];
    case 'tab':
      state.pane = PANES[(PANES.indexOf(state.pane) + 1) % PANES.length]!;
      return [];
    case 'up':
    case 'k':
      moveSelection(state, -1, now);
      if (state.inspect) return reinspect(state, now);
      return [];
    case 'down':
    case 'j':
      moveSelection(state, 1, now);
      if (state.inspect) return reinspect(state, now);
      return [];
    case '<':
    case 'left':
      stepSort(state, -1);
      return [];
    case '>':
    case 'right':
      stepSort(state, 1);
      return [];
    case 'i':
      invertSort(state);
      return [];
    case 'r':
    case 'K': {
      const actor = state.selected;
      if (!actor || !state.connected) return [];
      const type = key === 'r' ? 'restart' : 'kill';
      confirm(state, { type, actor }, `${type} ${actor}`);
      return [];
    }
    case 't':
      if (!state.selected || !state.connected) return [];
      state.prompt = {
        kind: 'input',
        purpose: 'trace',
        text: `trace ${state.selected}: count and seconds [${TRACE_DEFAULTS.count} ${TRACE_DEFAULTS.ms / 1000}]:`,
        value: '',
      };
      return [];
    case 'x':
      return state.trace && !state.trace.done ? [{ type: 'traceStop' }] : [];
    case 'a': {
      const row = state.pane === 'grants' ? pickedRow(state) : undefined;
      if (row?.kind === 'pending') {
        confirm(state, { type: 'approve', subscription: row.id }, `approve ${row.what}`);
        return [];
      }
      if (row) {
        say(state, 'only a subscription waiting for approval can be approved', now, true);
        return [];
      }
      state.prompt = {
        kind: 'input',
        purpose: 'approve',
        text: 'approve subscription id:',
        value: '',
      };
      return [];
    }
    case 'v': {
      const row = state.pane === 'grants' ? pickedRow(state) : undefined;
      if (row) {
        confirm(state, { type: 'revoke', target: row.id }, `revoke ${row.what}`);
        return [];
      }
      state.prompt = { kind: 'input', purpose: 'revoke', text: 'revoke entry id:', value: '' };
      return [];
    }
    default:
      return [];
  }
}

function promptKey(state: ConsoleState, key: Key, now: number): Effect[] {
  const prompt = state.prompt!;
  if (prompt.kind === 'confirm') {
    state.prompt = null;
    if (key !== 'y' && key !== 'Y') {
      say(state, `${prompt.action.type} cancelled`, now);
      return [];
    }
    return [{ ...prompt.action }];
  }
  switch (key) {
    case 'escape':
      state.prompt = null;
      say(state, `${prompt.purpose} cancelled`, now);
      return [];
    case 'backspace':
      prompt.value = prompt.value.slice(0, -1);
      return [];
    case 'enter':
      state.prompt = null;
      return submit(state, prompt.purpose, prompt.value, now);
    default:
      // Printable characters only, and a bound: an id is 64 characters.
      if (key.length === 1 && prompt.value.length < 128) prompt.value += key;
      return [];
  }
}

function submit(
  state: ConsoleState,
  purpose: 'approve' | 'revoke' | 'trace',
  value: string,
  now: number,
): Effect[] {
  if (purpose === 'trace') {
    const actor = state.selected;
    const parsed = parseTraceInput(value, TRACE_DEFAULTS);
    if ('error' in parsed) {
      say(state, parsed.error, now, true);
      return [];
    }
    state.pane = 'trace';
    return actor ? [{ type: 'trace', actor, ...parsed }] : [];
  }
  if (value.trim() === '') {
    say(state, `${purpose} cancelled`, now);
    return [];
  }
  const resolved = resolveId(state, value);
  if ('error' in resolved) {
    say(state, resolved.error, now, true);
    return [];
  }
  if (purpose === 'approve') return [{ type: 'approve', subscription: resolved.id }];
  // A revoke cannot be undone: it is confirmed even when typed.
  confirm(state, { type: 'revoke', target: resolved.id }, `revoke ${shortId(resolved.id)}`);
  return [];
}

/** Ask y/N before `action`; `what` is said in the question (peer text: printable on screen). */
function confirm(state: ConsoleState, action: Confirmable, what: string): void {
  state.prompt = { kind: 'confirm', text: `${what}? (y/N)`, action };
}

/** The inspect view follows the selection. */
function reinspect(state: ConsoleState, now: number): Effect[] {
  if (!state.selected) return [];
  state.inspect = { actor: state.selected, result: null, error: null, at: now };
  return [{ type: 'inspect', actor: state.selected }];
}
