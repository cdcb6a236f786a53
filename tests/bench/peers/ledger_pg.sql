-- ledger_pg.sql - the ledger in PL/pgSQL, for the PostgreSQL peer of
-- `make bench-peers` (issue 19; tests/bench/peers/peer_pg.c runs it on a
-- fresh database before loading the tables). The rules are those of
-- worker/handlers/ledger.c, written again for TSV payloads (type<TAB>amount;
-- the JSON form is not taken here).
--
-- ledger_apply runs one event: it changes the account's state and returns
-- the outcome line as the C ledger writes it, or NULL for a malformed
-- payload (recorded in dead). Two ways to call it, the faster is used:
-- ledger_batch(seqs, accounts, types, amounts) runs a whole batch in one
-- call and inserts its lines with one INSERT; ledger_event runs one event
-- and inserts its line. The server runs with synchronous_commit = off: a
-- commit is on disk within about three wal_writer_delay (200 ms), so an OS
-- crash loses at most the last moments, as ringmaster's default.

DROP TABLE IF EXISTS rules, accounts, state, output, dead;
CREATE TABLE rules (type text PRIMARY KEY, sign smallint NOT NULL,
	max_amount bigint NOT NULL, fee_bps bigint NOT NULL);
CREATE TABLE accounts (account text PRIMARY KEY, status text NOT NULL,
	overdraft_limit bigint NOT NULL);
CREATE TABLE state (account text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL);
CREATE TABLE output (seq bigint NOT NULL, line text NOT NULL);
CREATE TABLE dead (seq bigint NOT NULL, reason text NOT NULL);

CREATE OR REPLACE FUNCTION ledger_apply(p_seq bigint, p_account text, p_type text, p_amount text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r rules%ROWTYPE;
	a accounts%ROWTYPE;
	amount numeric;
	delta bigint;
	bal bigint := 0;
	n bigint := 0;
	have_state boolean;
	next numeric;
	head text := p_seq || E'\t' || p_account || E'\t' || p_type || E'\t' || p_amount || E'\t';
BEGIN
	IF p_type = '' OR p_amount !~ '^-?[0-9]+$' THEN
		INSERT INTO dead VALUES (p_seq, 'malformed');
		RETURN NULL;
	END IF;
	SELECT * INTO r FROM rules WHERE type = p_type;
	IF NOT FOUND THEN
		RETURN head || E'rejected\tunknown_type';
	END IF;
	SELECT * INTO a FROM accounts WHERE account = p_account;
	IF NOT FOUND THEN
		RETURN head || E'rejected\tunknown_account';
	ELSIF a.status = 'frozen' THEN
		RETURN head || E'rejected\tfrozen';
	END IF;
	amount := p_amount::numeric;
	IF amount < 1 OR amount > r.max_amount THEN
		RETURN head || E'rejected\tamount_out_of_range';
	END IF;
	-- Within the table limits (10^14 cents, 10^4 bps): no overflow here.
	delta := r.sign * amount::bigint - amount::bigint * r.fee_bps / 10000;
	SELECT balance, events INTO bal, n FROM state WHERE account = p_account;
	have_state := FOUND;
	IF NOT have_state THEN
		bal := 0;
		n := 0;
	END IF;
	next := bal::numeric + delta;
	IF next > 9223372036854775807 OR next < -9223372036854775808 THEN
		RETURN head || E'rejected\tbalance_overflow';
	END IF;
	IF delta < 0 AND next < -a.overdraft_limit THEN
		RETURN head || E'rejected\tinsufficient_funds';
	END IF;
	IF have_state THEN
		UPDATE state SET balance = next, events = n + 1 WHERE account = p_account;
	ELSE
		INSERT INTO state VALUES (p_account, next, 1);
	END IF;
	RETURN head || E'accepted\t' || next;
END
$$;

CREATE OR REPLACE FUNCTION ledger_batch(seqs bigint[], accts text[], types text[], amounts text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	lines text[] := '{}';
	line_seqs bigint[] := '{}';
	line text;
BEGIN
	FOR i IN 1 .. coalesce(array_length(seqs, 1), 0) LOOP
		line := ledger_apply(seqs[i], accts[i], types[i], amounts[i]);
		IF line IS NOT NULL THEN
			lines := lines || line;
			line_seqs := line_seqs || seqs[i];
		END IF;
	END LOOP;
	INSERT INTO output SELECT * FROM unnest(line_seqs, lines);
END
$$;

CREATE OR REPLACE FUNCTION ledger_event(p_seq bigint, p_account text, p_type text, p_amount text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	line text := ledger_apply(p_seq, p_account, p_type, p_amount);
BEGIN
	IF line IS NOT NULL THEN
		INSERT INTO output VALUES (p_seq, line);
	END IF;
END
$$;
