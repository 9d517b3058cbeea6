import {
  accountsQuery,
  accountsResponse,
  errorResponses,
  idParams,
  ledgerQuery,
  ledgerResponse,
} from '@kilowire/contract';
import { AppError } from '../../errors.ts';
import { ledgerRows } from '../../money/ledger.ts';
import { accountInScope, listAccounts } from '../../money/queries.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, decodeIdCursor, encodeIdCursor, type Routes } from '../http.ts';

export const accountRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/accounts',
    {
      schema: {
        tags: ['money'],
        summary:
          "Accounts with their ledger balance (households: their own; supplier staff: their supplier's, searchable; admins: all)",
        querystring: accountsQuery,
        response: { 200: accountsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'accounts.read');
      const page = await listAccounts(pool, actor, {
        search: req.query.q,
        mode: req.query.mode,
        limit: req.query.limit,
        afterId: decodeIdCursor(req.query.cursor),
      });
      return {
        items: page.items,
        nextCursor: page.nextAfter === null ? null : encodeIdCursor(page.nextAfter),
      };
    },
  );

  app.get(
    '/api/accounts/:id/ledger',
    {
      schema: {
        tags: ['money'],
        summary: "An account's ledger transactions, newest first, with the running balance after each",
        params: idParams,
        querystring: ledgerQuery,
        response: { 200: ledgerResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'accounts.read');
      const account = await accountInScope(pool, actor, req.params.id);
      if (!account) throw new AppError('NOT_FOUND', 'account not found');
      const rows = await ledgerRows(
        pool,
        account.id,
        req.query.limit + 1,
        decodeIdCursor(req.query.cursor) ?? undefined,
      );
      const items = rows.slice(0, req.query.limit);
      return {
        account,
        items,
        nextCursor: rows.length > req.query.limit ? encodeIdCursor(items[items.length - 1]!.txnId) : null,
      };
    },
  );
};
