using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Dapper;
using Fundament.Core.Storage;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Audit;

public abstract class AuditLogTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private IDatabase Database => factory.Services.GetRequiredService<IDatabase>();

    private async Task<JsonNode> VerifyAsync()
    {
        using var admin = await factory.AdminAsync();
        var response = await admin.GetAsync("/api/v1/audit/verify", _ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.JsonAsync();
    }

    /// <summary>Puts back the entries a test removed and the head it rewrote.</summary>
    private static async Task RestoreAsync(System.Data.Common.DbConnection connection, List<Dictionary<string, object>> tail, (long Seq, string Hash, string Mac) head)
    {
        foreach (var columns in tail)
        {
            await connection.ExecuteAsync(
                $"INSERT INTO audit_entries ({string.Join(", ", columns.Keys)}) VALUES ({string.Join(", ", columns.Keys.Select(k => "@" + k))})",
                new DynamicParameters(columns));
        }
        await connection.ExecuteAsync("UPDATE audit_chain SET head_seq = @Seq, head_hash = @Hash, head_mac = @Mac WHERE id = 1", new { head.Seq, head.Hash, head.Mac });
    }

    private async Task<List<JsonNode>> AllEntriesAsync(HttpClient admin)
    {
        var entries = new List<JsonNode>();
        string url = "/api/v1/audit?limit=100";
        while (true)
        {
            var page = await (await admin.GetAsync(url, _ct)).JsonAsync();
            entries.AddRange(page["items"]!.AsArray().Select(e => e!));
            if (page["next"] is not JsonValue next)
            {
                return entries;
            }
            url = $"/api/v1/audit?limit=100&before={next.GetValue<long>()}";
        }
    }

    [Fact]
    public async Task SecurityActions_AreRecorded_WithWhoWhatOutcome()
    {
        var (id, username) = await factory.CreateUserAsync();
        using var anonymous = factory.CreateClient();
        await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username, password = "definitely-wrong-pw" }, _ct);
        await factory.LoginAsync(username, Api.UserPassword);
        using var admin = await factory.AdminAsync();

        var created = await (await admin.GetAsync($"/api/v1/audit?action=user.create&target=user:{id}", _ct)).JsonAsync();
        var entry = created["items"]!.AsArray().Single()!;
        Assert.StartsWith("user:", entry["actor"]!.GetValue<string>());
        Assert.Equal("admin", entry["actorName"]!.GetValue<string>());
        Assert.Equal("success", entry["outcome"]!.GetValue<string>());

        var logins = (await (await admin.GetAsync($"/api/v1/audit?action=auth.&actor=user:{id}", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Contains(logins, e => e!["outcome"]!.GetValue<string>() == "failure" && e["details"]!["reason"]!.GetValue<string>() == "bad_password");
        Assert.Contains(logins, e => e!["outcome"]!.GetValue<string>() == "success");
    }

    [Fact]
    public async Task Chain_Verifies_AndDetectsAnEditedEntry()
    {
        await factory.CreateUserAsync();
        var before = await VerifyAsync();
        Assert.True(before["valid"]!.GetValue<bool>(), before.ToJsonString());
        Assert.True(before["entries"]!.GetValue<long>() > 0);

        await using var connection = await Database.OpenAsync(_ct);
        var seq = await connection.ExecuteScalarAsync<long>("SELECT MIN(seq) FROM audit_entries WHERE action = 'user.create'");
        var original = await connection.ExecuteScalarAsync<string>("SELECT outcome FROM audit_entries WHERE seq = @seq", new { seq });
        await connection.ExecuteAsync("UPDATE audit_entries SET outcome = 'failure' WHERE seq = @seq", new { seq });
        try
        {
            var after = await VerifyAsync();
            Assert.False(after["valid"]!.GetValue<bool>());
            Assert.Equal(seq, after["firstInvalidSeq"]!.GetValue<long>());

            // The periodic verification finds it on its own, and says so where Prometheus alerts.
            Assert.False((await factory.Services.GetRequiredService<Fundament.Audit.AuditVerifier>().VerifyAsync(_ct)).Valid);
            Assert.Equal(0, ChainValidGauge());
        }
        finally
        {
            await connection.ExecuteAsync("UPDATE audit_entries SET outcome = @original WHERE seq = @seq", new { seq, original });
        }
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
        Assert.True((await factory.Services.GetRequiredService<Fundament.Audit.AuditVerifier>().VerifyAsync(_ct)).Valid);
        Assert.Equal(1, ChainValidGauge());
    }

    /// <summary><c>fundament_audit_chain_valid</c> as this server's meter reports it (every factory in the process exports under the same name).</summary>
    private int ChainValidGauge()
    {
        using var collector = new Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<int>(
            factory.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), "Fundament.Audit.Verifier", "fundament.audit.chain.valid");
        collector.RecordObservableInstruments();
        return collector.LastMeasurement!.Value;
    }

    [Fact]
    public async Task Chain_DetectsARemovedEntry_InTheMiddleOrAtTheEnd()
    {
        await factory.CreateUserAsync();
        await factory.CreateUserAsync();
        await using var connection = await Database.OpenAsync(_ct);
        var last = await connection.ExecuteScalarAsync<long>("SELECT MAX(seq) FROM audit_entries");
        foreach (var seq in new[] { 1L, last })
        {
            var row = await connection.QuerySingleAsync("SELECT * FROM audit_entries WHERE seq = @seq", new { seq });
            var columns = ((IDictionary<string, object>)row).ToDictionary(kv => kv.Key, kv => kv.Value);
            await connection.ExecuteAsync("DELETE FROM audit_entries WHERE seq = @seq", new { seq });
            try
            {
                Assert.False((await VerifyAsync())["valid"]!.GetValue<bool>(), $"removing entry {seq} went unnoticed");
            }
            finally
            {
                await connection.ExecuteAsync(
                    $"INSERT INTO audit_entries ({string.Join(", ", columns.Keys)}) VALUES ({string.Join(", ", columns.Keys.Select(k => "@" + k))})",
                    new DynamicParameters(columns));
            }
        }
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
    }

    [Fact]
    public async Task DeletingTheNewestEntries_AndRewindingTheHead_FailsVerification_SayingWhere()
    {
        await factory.CreateUserAsync();
        await factory.CreateUserAsync();
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
        await using var connection = await Database.OpenAsync(_ct);
        var last = await connection.ExecuteScalarAsync<long>("SELECT MAX(seq) FROM audit_entries");
        var keep = last - 2;
        var tail = (await connection.QueryAsync("SELECT * FROM audit_entries WHERE seq > @keep", new { keep }))
            .Select(r => ((IDictionary<string, object>)r).ToDictionary(kv => kv.Key, kv => kv.Value)).ToList();
        var head = await connection.QuerySingleAsync<(long Seq, string Hash, string Mac)>("SELECT head_seq, head_hash, head_mac FROM audit_chain WHERE id = 1");
        var keptHash = await connection.ExecuteScalarAsync<string>("SELECT hash FROM audit_entries WHERE seq = @keep", new { keep });
        await connection.ExecuteAsync("DELETE FROM audit_entries WHERE seq > @keep", new { keep });
        await connection.ExecuteAsync("UPDATE audit_chain SET head_seq = @keep, head_hash = @keptHash WHERE id = 1", new { keep, keptHash });
        try
        {
            var after = await VerifyAsync();
            Assert.False(after["valid"]!.GetValue<bool>(), after.ToJsonString());
            Assert.Equal(keep + 1, after["firstInvalidSeq"]!.GetValue<long>());
            Assert.Contains("head", after["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        }
        finally
        {
            await RestoreAsync(connection, tail, head);
        }
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
    }

    [Fact]
    public async Task RestoringAnEarlierValidHead_OverATruncatedTail_IsCaught()
    {
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
        await using var connection = await Database.OpenAsync(_ct);
        // An attacker who once copied the head row (MAC and all) waits for more entries, then cuts them off.
        var old = await connection.QuerySingleAsync<(long Seq, string Hash, string Mac)>("SELECT head_seq, head_hash, head_mac FROM audit_chain WHERE id = 1");
        await factory.CreateUserAsync();
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
        var current = await connection.QuerySingleAsync<(long Seq, string Hash, string Mac)>("SELECT head_seq, head_hash, head_mac FROM audit_chain WHERE id = 1");
        var tail = (await connection.QueryAsync("SELECT * FROM audit_entries WHERE seq > @Seq", new { old.Seq }))
            .Select(r => ((IDictionary<string, object>)r).ToDictionary(kv => kv.Key, kv => kv.Value)).ToList();
        await connection.ExecuteAsync("DELETE FROM audit_entries WHERE seq > @Seq", new { old.Seq });
        await connection.ExecuteAsync("UPDATE audit_chain SET head_seq = @Seq, head_hash = @Hash, head_mac = @Mac WHERE id = 1", new { old.Seq, old.Hash, old.Mac });
        try
        {
            var after = await VerifyAsync();
            Assert.False(after["valid"]!.GetValue<bool>(), after.ToJsonString());
            Assert.Equal(old.Seq + 1, after["firstInvalidSeq"]!.GetValue<long>());
        }
        finally
        {
            await RestoreAsync(connection, tail, current);
        }
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
    }

    [Fact]
    public async Task ARewoundHeadStrippedOfItsMac_IsNotSignedAgainAtStartup()
    {
        await factory.CreateUserAsync();
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
        await using var connection = await Database.OpenAsync(_ct);
        var current = await connection.QuerySingleAsync<(long Seq, string Hash, string Mac)>("SELECT head_seq, head_hash, head_mac FROM audit_chain WHERE id = 1");
        var keep = current.Seq - 1;
        var tail = (await connection.QueryAsync("SELECT * FROM audit_entries WHERE seq > @keep", new { keep }))
            .Select(r => ((IDictionary<string, object>)r).ToDictionary(kv => kv.Key, kv => kv.Value)).ToList();
        var keptHash = await connection.ExecuteScalarAsync<string>("SELECT hash FROM audit_entries WHERE seq = @keep", new { keep });
        // Cut the tail, rewind the head and drop its MAC, as if the chain predated head MACs; then restart.
        await connection.ExecuteAsync("DELETE FROM audit_entries WHERE seq > @keep", new { keep });
        await connection.ExecuteAsync("UPDATE audit_chain SET head_seq = @keep, head_hash = @keptHash, head_mac = NULL WHERE id = 1", new { keep, keptHash });
        try
        {
            foreach (var task in factory.Services.GetServices<Fundament.Core.Hosting.IStartupTask>().Where(t => t.GetType().Name == "AuditLog"))
            {
                await task.RunAsync(_ct);
            }
            Assert.Null(await connection.ExecuteScalarAsync<string?>("SELECT head_mac FROM audit_chain WHERE id = 1"));
            var after = await VerifyAsync();
            Assert.False(after["valid"]!.GetValue<bool>(), after.ToJsonString());
            Assert.Contains("MAC", after["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        }
        finally
        {
            await RestoreAsync(connection, tail, current);
        }
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
    }

    [Fact]
    public async Task APendingEntryAlteredBeforeItIsChained_IsChainedAsTampered_NeverAsWritten()
    {
        await using var connection = await Database.OpenAsync(_ct);
        var id = Guid.NewGuid().ToString("N");
        await connection.ExecuteAsync(
            "INSERT INTO audit_pending (id, at, actor, action, target, outcome, mac) VALUES (@id, 1, 'user:nobody', 'user.delete', 'user:admin', 'success', 'not-a-mac')", new { id });
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
        using var admin = await factory.AdminAsync();
        var entries = (await (await admin.GetAsync($"/api/v1/audit?action=audit.tampered&target=audit_pending:{id}", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Single(entries);
        Assert.Empty((await (await admin.GetAsync("/api/v1/audit?actor=user:nobody", _ct)).JsonAsync())["items"]!.AsArray());
    }

    [Fact]
    public async Task ConcurrentStandaloneEntries_AreEachDurableBeforeTheirAnswer_InOneUnbrokenChain()
    {
        // Failed logins are audited on their own (no unit of work): they go through group commit.
        var names = Enumerable.Range(0, 120).Select(i => Api.UniqueName($"burst{i}")).ToArray();
        using var anonymous = factory.CreateClient();
        var before = (await VerifyAsync())["entries"]!.GetValue<long>();
        var linesBefore = factory.AuditLogLines.Count;
        await using var connection = await Database.OpenAsync(_ct);
        // Changes audited in units of work meanwhile: the linker chains them while the group-commit
        // writer chains the logins, both under the head's lock.
        var changes = Task.WhenAll(Enumerable.Range(0, 12).Select(_ => factory.CreateUserAsync()));
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = _ct }, async (username, ct) =>
        {
            var response = await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username, password = "not-the-password" }, ct);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            // Audit before response: by the time the caller has its answer the entry is committed,
            // without waiting for (or triggering) the linker.
            await using var own = await Database.OpenAsync(ct);
            var stored = await own.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT (SELECT COUNT(*) FROM audit_entries WHERE actor_name = @username) + (SELECT COUNT(*) FROM audit_pending WHERE actor_name = @username)",
                new { username }, cancellationToken: ct));
            Assert.Equal(1, stored);
        });
        await changes;
        var after = await VerifyAsync();
        Assert.True(after["valid"]!.GetValue<bool>(), after.ToJsonString());
        Assert.True(after["entries"]!.GetValue<long>() >= before + names.Length);
        // Two writers taking turns on the head must never mistake each other for tampering.
        Assert.DoesNotContain(factory.AuditLogLines.Skip(linesBefore), line => line.Contains("does not verify", StringComparison.Ordinal));
        var seqs = (await connection.QueryAsync<long>(
            $"SELECT seq FROM audit_entries WHERE action = 'auth.login' AND {(Database.Dialect.InList("actor_name", "names"))}", new { names })).ToList();
        Assert.Equal(names.Length, seqs.Count);
        Assert.Equal(names.Length, seqs.Distinct().Count());
    }

    /// <summary>PostgreSQL only (row locks queue writers there; SQLite has one writer): see <see cref="PostgresAuditLogTests"/>.</summary>
    protected async Task AWriterThatWaitedForTheHead_SeesTheEntriesChainedMeanwhile()
    {
        var linesBefore = factory.AuditLogLines.Count;
        using var admin = await factory.AdminAsync();
        Task<HttpResponseMessage> read;
        await using (var holder = await Database.OpenAsync(_ct))
        {
            // Hold the head: the linker (for a change) and then the group-commit writer (for a secret
            // read, audited on its own) queue behind this lock, in that order.
            await using var transaction = await holder.BeginTransactionAsync(_ct);
            await holder.ExecuteAsync(new CommandDefinition("SELECT head_seq FROM audit_chain WHERE id = 1 FOR UPDATE", transaction: transaction, cancellationToken: _ct));
            await factory.CreateUserAsync();
            await Task.Delay(400, _ct);
            read = admin.GetAsync($"/api/v1/secrets/queued/{Guid.NewGuid():N}", _ct);
            await Task.Delay(400, _ct);
            Assert.False(read.IsCompleted, "the read's audit entry should wait for the head");
            await transaction.CommitAsync(_ct);
        }
        // The linker chains the change first; the writer, which began waiting before that commit,
        // must judge the head against the chain as it is once it holds the lock.
        Assert.Equal(HttpStatusCode.NotFound, (await read).StatusCode);
        Assert.True((await VerifyAsync())["valid"]!.GetValue<bool>());
        Assert.DoesNotContain(factory.AuditLogLines.Skip(linesBefore), line => line.Contains("does not verify", StringComparison.Ordinal));
    }

    [Fact]
    public async Task NoSecretEverReachesTheLog()
    {
        var password = "Secret-Canary-Password-" + Guid.NewGuid().ToString("N")[..8];
        using var admin = await factory.AdminAsync();
        var username = Api.UniqueName("canary");
        (await admin.PostAsJsonAsync("/api/v1/users", new { username, password }, _ct)).EnsureSuccessStatusCode();
        var tokens = await factory.LoginAsync(username, password);
        using var anonymous = factory.CreateClient();
        await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username, password = password + "-wrong" }, _ct);
        var key = (await (await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "canary" }, _ct)).JsonAsync())["key"]!.GetValue<string>();
        var client = await (await admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("canary") }, _ct)).JsonAsync();
        var refresh = tokens["refresh_token"]!.GetValue<string>();
        await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refresh }, _ct);
        await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refresh }, _ct);

        var everything = string.Join("\n", (await AllEntriesAsync(admin)).Select(e => e.ToJsonString()));
        await using var connection = await Database.OpenAsync(_ct);
        everything += string.Join("\n", (await connection.QueryAsync("SELECT * FROM audit_entries")).Select(r => string.Join("|", ((IDictionary<string, object>)r).Values)));
        foreach (var secret in new[] { password, key, client["client_secret"]!.GetValue<string>(), refresh, tokens["access_token"]!.GetValue<string>() })
        {
            Assert.DoesNotContain(secret, everything, StringComparison.Ordinal);
        }
        Assert.Contains(username, everything, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Audit_IsForAdminsOnly_AndValidatesFilters()
    {
        var (guest, _, _) = await factory.UserClientAsync("guest");
        await (await guest.GetAsync("/api/v1/audit", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await guest.GetAsync("/api/v1/audit/verify", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        using var admin = await factory.AdminAsync();
        await (await admin.GetAsync("/api/v1/audit?limit=0", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/audit?from=yesterday", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        var page = await (await admin.GetAsync("/api/v1/audit?limit=1", _ct)).JsonAsync();
        Assert.Single(page["items"]!.AsArray());
        Assert.NotNull(page["next"]);
    }
}

public sealed class SqliteAuditLogTests(SqliteFundamentFactory factory) : AuditLogTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresAuditLogTests : AuditLogTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresAuditLogTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");

    [Fact]
    public Task AWriterThatWaitedForTheHead_SeesTheEntriesChainedMeanwhile_AndRaisesNoAlarm() => AWriterThatWaitedForTheHead_SeesTheEntriesChainedMeanwhile();
}
