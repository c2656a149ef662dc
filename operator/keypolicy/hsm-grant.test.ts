import { describe, expect, it } from '@jest/globals';
import { hsmGrant } from './hsm-grant.js';

const GRANT = 'lockstep.dev/hsm-allowed-namespaces';

describe('hsmGrant', () => {
  it('lets the operator\'s own namespace use its HSM config', () => {
    expect(hsmGrant('lockstep-system', 'lockstep-system', 'hsm', undefined)).toEqual({ allowed: true });
  });

  it('lets a namespace the administrator listed (or *) use it, and nothing else', () => {
    expect(hsmGrant('team-a', 'lockstep-system', 'hsm', { [GRANT]: 'team-b, team-a' })).toEqual({ allowed: true });
    expect(hsmGrant('team-a', 'lockstep-system', 'hsm', { [GRANT]: '*' })).toEqual({ allowed: true });
    const refused: (Record<string, string> | undefined)[] = [undefined, {}, { [GRANT]: '' }, { [GRANT]: 'team-ab,team' }, { 'lockstep.dev/allowed-namespaces': 'team-a' }];
    for (const annotations of refused) {
      const grant = hsmGrant('team-a', 'lockstep-system', 'hsm', annotations);
      expect(grant.allowed).toBe(false);
      if (!grant.allowed) expect(grant.message).toContain(`${GRANT}`);
    }
  });
});
