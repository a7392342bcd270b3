-- superfasttt: tables the app reads (see "Table contract" in the README).
-- Runs with search_path = the tenant schema only: never qualify names, never touch public.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
  first_name    text NOT NULL,
  last_name     text NOT NULL,
  phone         text,
  password_hash text NOT NULL,
  role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'super_admin')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Exactly one row (id is always true), created here.
CREATE TABLE setup_state (
  id                boolean PRIMARY KEY DEFAULT true CHECK (id),
  completed         boolean NOT NULL DEFAULT false,
  completed_at      timestamptz,
  completed_by      text CHECK (completed_by IN ('bootstrap', 'wizard')),
  bootstrap_version text,
  CHECK (NOT completed OR (completed_at IS NOT NULL AND completed_by IS NOT NULL))
);
INSERT INTO setup_state (id) VALUES (true);

-- The setup is disabled for good: once completed, no app bug can reopen the wizard.
-- The row can never be deleted or truncated, and completed can never go back to false.
CREATE FUNCTION setup_state_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
    RAISE EXCEPTION 'setup_state: the row cannot be deleted' USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.completed AND NOT NEW.completed THEN
    RAISE EXCEPTION 'setup_state: a completed setup cannot be reopened' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER setup_state_guard BEFORE UPDATE OR DELETE ON setup_state
  FOR EACH ROW EXECUTE FUNCTION setup_state_guard();
CREATE TRIGGER setup_state_no_truncate BEFORE TRUNCATE ON setup_state
  FOR EACH STATEMENT EXECUTE FUNCTION setup_state_guard();

CREATE TABLE instance_settings (
  key        text PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
