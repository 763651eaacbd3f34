// Who may approve a vendor (OAUTH_APPROVERS): a signed-in GitLab user named in the list, or a
// member of a listed group with at least the given access level. Membership is asked of
// GitLab with the proxy's own token: GET /groups/:id/members/all/:user_id answers the member
// (direct or inherited) with its access_level, or 404 (doc/api/members.md, "Get a member of a
// group or project, including inherited and invited members").
import type { ApproverRule } from '../config/oauth.ts';

export interface SignedInUser {
  id: number;
  username: string;
}

/** GitLab's answer for a group member, or undefined when the user is not one. */
export type MembershipLookup = (group: string, userId: number) => Promise<{ accessLevel: number; state: string } | undefined>;

/** The rule that admits the user, as text for the audit log, or undefined. */
export async function approverRule(user: SignedInUser, rules: readonly ApproverRule[], membership: MembershipLookup): Promise<string | undefined> {
  for (const rule of rules) {
    // GitLab usernames are unique regardless of case (app/models/user.rb, validates :username, uniqueness: case_sensitive: false).
    if (rule.kind === 'user' && rule.username.toLowerCase() === user.username.toLowerCase()) return `user:${rule.username}`;
  }
  for (const rule of rules) {
    if (rule.kind !== 'group') continue;
    const member = await membership(rule.group, user.id);
    if (member && member.state === 'active' && member.accessLevel >= rule.minAccessLevel) return `group:${rule.group}:${rule.minAccessLevel}`;
  }
  return undefined;
}
