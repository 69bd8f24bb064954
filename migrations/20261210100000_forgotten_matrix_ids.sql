-- Matrix IDs of forgotten people that still hold privileges the service granted (power levels, gated-room invitations): the next full pass takes them back, the audit entries it writes are re-keyed to the person's opaque id, and the row goes once nothing of the service's is left on the ID.
CREATE TABLE forgotten_matrix_ids (
  user_id text PRIMARY KEY,
  opaque_id text NOT NULL,
  forgotten_at timestamptz NOT NULL
);
