// `lockstep completion bash|zsh|fish`: a shell completion script for the commands and their
// flags, read from each command's usage text (one source: what --help shows is what completes).
import { parseArgs } from 'node:util';
import { CliError, EXIT, type CliIo } from './io.js';
import { KUBE_FLAGS_USAGE } from './kube-flags.js';

export const COMPLETION_USAGE = `Usage: lockstep completion bash|zsh|fish
Prints a completion script for lockstep and kubectl-lockstep. For example:
  source <(lockstep completion bash)                       # bash, in ~/.bashrc
  source <(lockstep completion zsh)                        # zsh, in ~/.zshrc
  lockstep completion fish > ~/.config/fish/completions/lockstep.fish
`;

export interface CompletableCommand { readonly summary: string; readonly usage: string }

/** The long flags a usage text names (--flag), sorted and unique. */
export function flagsOf(usage: string): string[] {
  return [...new Set([...usage.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]))].sort();
}

const words = (list: readonly string[]) => list.join(' ');
const singleQuoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

function bash(commands: Readonly<Record<string, CompletableCommand>>): string {
  const global = flagsOf(KUBE_FLAGS_USAGE);
  const cases = Object.entries(commands)
    .map(([name, c]) => `    ${name}) flags=${singleQuoted(words([...flagsOf(c.usage), ...global, '--help']))} ;;`).join('\n');
  return `# bash completion for lockstep (lockstep completion bash)
_lockstep() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd=\${COMP_WORDS[1]} flags
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W ${singleQuoted(words([...Object.keys(commands), 'help']))} -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
    *) flags='' ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -o default -F _lockstep lockstep kubectl-lockstep
`;
}

function fish(commands: Readonly<Record<string, CompletableCommand>>): string {
  const lines = ['# fish completion for lockstep (lockstep completion fish)', 'for cmd in lockstep kubectl-lockstep'];
  for (const [name, c] of Object.entries(commands)) {
    lines.push(`  complete -c $cmd -f -n __fish_use_subcommand -a ${name} -d ${singleQuoted(c.summary)}`);
    for (const flag of flagsOf(c.usage)) lines.push(`  complete -c $cmd -n ${singleQuoted(`__fish_seen_subcommand_from ${name}`)} -l ${flag.slice(2)}`);
  }
  for (const flag of flagsOf(KUBE_FLAGS_USAGE)) lines.push(`  complete -c $cmd -l ${flag.slice(2)}`);
  lines.push('end');
  return `${lines.join('\n')}\n`;
}

export function completionScript(shell: string, commands: Readonly<Record<string, CompletableCommand>>): string {
  if (shell === 'bash') return bash(commands);
  // zsh runs the bash function through its bash completion emulation.
  if (shell === 'zsh') return `#compdef lockstep kubectl-lockstep\nautoload -U +X bashcompinit && bashcompinit\n${bash(commands)}`;
  if (shell === 'fish') return fish(commands);
  throw new CliError(`unknown shell ${JSON.stringify(shell)}: use bash, zsh or fish\n${COMPLETION_USAGE}`, EXIT.usage);
}

export async function completionCommand(argv: readonly string[], io: CliIo, commands: Readonly<Record<string, CompletableCommand>>): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  if (values.help) {
    io.out(COMPLETION_USAGE);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new CliError(`give one shell\n${COMPLETION_USAGE}`, EXIT.usage);
  io.out(completionScript(positionals[0] ?? '', commands));
  return EXIT.ok;
}
