-- Reconnect campaigns (issue 25): one `link --where FILTER --csv FILE` makes a link for
-- every connection the filter selects. The campaign keeps what was asked (the filter, by
-- whom, until when, how many) so its links can be followed as one: opened, completed,
-- expired. The links stay ordinary invitations, each tagged with its campaign.
CREATE TABLE link_campaigns (
    id          BIGSERIAL PRIMARY KEY,
    filter      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    link_count  BIGINT NOT NULL
);
ALTER TABLE link_invitations ADD COLUMN campaign_id BIGINT REFERENCES link_campaigns (id);
CREATE INDEX link_invitations_campaign ON link_invitations (campaign_id);
