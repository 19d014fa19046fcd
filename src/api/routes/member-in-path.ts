import type { Context } from 'koa';
import type { Knex } from 'knex';
import type { Person } from '../../../models/Person.js';
import { findPerson } from '../../storage/repositories/people.js';
import { authorize, type Principal } from '../auth.js';
import { notFound } from '../errors.js';
import { idParams, parse } from '../validation.js';

/** The member named by `:id` and the caller, if an admin or the merchant owning it is calling (another merchant: 404). */
export async function memberInPath(ctx: Context, db: Knex): Promise<{ person: Person; principal: Extract<Principal, { role: 'admin' | 'merchant' }> }> {
  const principal = authorize(ctx, 'admin', 'merchant');
  const { id } = parse(idParams, ctx.params, 'path');
  const person = await findPerson(db, id, principal);
  if (!person) throw notFound('person');
  return { person, principal };
}
