# Request Tracker 5 initialdata: one global scrip that POSTs a small JSON notice to a URL
# whenever a ticket is created, replied to (Correspond) or commented on, so that sopilot need not poll.
#
# Install (idempotent: a database that already has the scrip is left as it is):
#   rt-setup-database --action insert --datafile scripts/rt-webhook-initialdata.pl
# and set the target in an RT site config file (RT_SiteConfig.d/*.pm), then restart RT:
#   Set($SopilotWebhookURL, 'http://127.0.0.1:8000/rt/webhook');
#   Set($SopilotWebhookSecret, 'shared-secret');   # optional: signs the body (X-Sopilot-Timestamp, X-Sopilot-Signature)
# Without $SopilotWebhookURL the scrip does nothing.
#
# The POST happens inside the RT request that made the change (synchronously, before RT answers its
# client), with a 2 s timeout; a failure is logged by RT and never blocks or fails the ticket update.
# The body is a notice, not the data: the receiver answers 2xx at once and reads the transaction over
# REST2 afterwards (GET /REST/2.0/transaction/{transaction_id}).
#   {"event": "create"|"correspond"|"comment", "ticket_id": 7, "transaction_id": 123,
#    "queue": "General", "subject": "...", "created": "2026-12-01T22:04:21Z"}

@Scrips = (
    {
        Description            => 'sopilot webhook',
        ScripCondition         => 'User Defined',
        ScripAction            => 'User Defined',
        Template               => 'Blank',
        CustomIsApplicableCode => q{
            my $type = $self->TransactionObj->Type;
            return ($type eq 'Create' || $type eq 'Correspond' || $type eq 'Comment') ? 1 : 0;
        },
        CustomPrepareCode => q{
            return RT->Config->Get('SopilotWebhookURL') ? 1 : 0;
        },
        CustomCommitCode => q{
            require HTTP::Tiny;
            require JSON;
            my $txn    = $self->TransactionObj;
            my $ticket = $self->TicketObj;
            my $body   = JSON::encode_json({
                event          => lc $txn->Type,
                ticket_id      => $ticket->id + 0,
                transaction_id => $txn->id + 0,
                queue          => $ticket->QueueObj->Name,
                subject        => $ticket->Subject,
                created        => $txn->CreatedObj->W3CDTF,
            });
            my %headers = ('Content-Type' => 'application/json');
            my $secret  = RT->Config->Get('SopilotWebhookSecret');
            if (defined $secret && length $secret) {
                # Signed as sopilot's webhooks are (sopilot.helpdesk.signing): HMAC-SHA256 over "timestamp.body".
                require Digest::SHA;
                my $timestamp = time;
                $headers{'X-Sopilot-Timestamp'} = $timestamp;
                $headers{'X-Sopilot-Signature'} = 'sha256=' . Digest::SHA::hmac_sha256_hex("$timestamp.$body", $secret);
            }
            my $response = HTTP::Tiny->new(timeout => 2)->post(
                RT->Config->Get('SopilotWebhookURL'),
                { headers => \%headers, content => $body },
            );
            RT->Logger->warning(
                "sopilot webhook for transaction " . $txn->id . ": $response->{status} $response->{reason}"
            ) unless $response->{success};
            return 1;
        },
    },
);

# Already installed (same Description): insert nothing, so running this twice adds no second scrip.
my $existing = RT::Scrips->new(RT->SystemUser);
$existing->Limit(FIELD => 'Description', VALUE => $Scrips[0]{Description});
@Scrips = () if $existing->Count;

1;
