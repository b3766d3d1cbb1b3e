/** The control commands on remote delivery: `show hosts|relays|routes|hoststats`, `resume route`. */
import type { CommandEnv, ControlCommand } from './commands.js';

function show(what: 'hosts' | 'relays' | 'routes' | 'hoststats') {
  return async (env: CommandEnv) => {
    const res = await env.bus.request('control.mta.show', { what });
    return { [what]: res.items, text: res.lines.map((l) => `${l}\n`).join('') };
  };
}

async function resumeRoute(env: CommandEnv, [route]: string[]) {
  const { found } = await env.bus.request('control.mta.resume-route', { route: route! });
  if (!found) throw new Error(`no such route: ${route}`);
  return { text: 'command succeeded\n' };
}

export function mtaCommands(): ControlCommand[] {
  const none = { min: 0, max: 0, names: '' };
  return [
    { words: ['show', 'hosts'], args: none, handler: show('hosts') },
    { words: ['show', 'relays'], args: none, handler: show('relays') },
    { words: ['show', 'routes'], args: none, handler: show('routes') },
    { words: ['show', 'hoststats'], args: none, handler: show('hoststats') },
    { words: ['resume', 'route'], args: { min: 1, max: 1, names: '<route>' }, handler: resumeRoute },
  ];
}
