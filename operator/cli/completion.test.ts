import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { completionScript, flagsOf } from './completion.js';
import { COMMANDS } from './main.js';

/** Runs the bash completion function for a command line, as bash would on <TAB>. */
function complete(words: string[]): string[] {
  const script = `${completionScript('bash', COMMANDS)}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_lockstep; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['-c', script], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('lockstep completion', () => {
  it('reads the long flags a usage text names', () => {
    expect(flagsOf('Usage: x [--watch] (--policy P | --jwks FILE) -n NS --request-timeout=T not--this')).toEqual(['--jwks', '--policy', '--request-timeout', '--watch']);
  });

  it('bash completes commands, then each command\'s flags and the cluster flags', () => {
    expect(complete(['lockstep', 'ro'])).toEqual(['rotate']);
    expect(complete(['lockstep', 's'])).toEqual(['seal', 'status']);
    expect(complete(['lockstep', 'status', '--w'])).toEqual(['--watch']);
    expect(complete(['lockstep', 'seal', '--merge'])).toEqual(['--merge-into']);
    expect(complete(['lockstep', 'check', '--con'])).toEqual(['--context']);
  });

  it('zsh wraps the bash function; fish lists commands and flags; other shells are a usage error', () => {
    expect(completionScript('zsh', COMMANDS)).toMatch(/^#compdef lockstep kubectl-lockstep\nautoload -U \+X bashcompinit/);
    const fish = completionScript('fish', COMMANDS);
    expect(fish).toContain("complete -c $cmd -f -n __fish_use_subcommand -a fetch-key -d 'save a KeyPolicy'\\''s sealing public key");
    expect(fish).toContain("complete -c $cmd -n '__fish_seen_subcommand_from status' -l watch");
    expect(() => completionScript('tcsh', COMMANDS)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});
