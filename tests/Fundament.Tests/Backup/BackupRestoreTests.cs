using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Backup;

/// <summary>
/// <c>fundament backup</c>, <c>backup verify</c> and <c>restore</c> as an operator runs them: real
/// processes, a server under write load while the backup is taken, and a second server started on
/// the restored copy that must serve the same users, secrets, media bytes and audit chain.
/// </summary>
public sealed class BackupRestoreTests : IAsyncLifetime
{
    private const string Password = "Backup-Tour-Password-1";
    private const string Passphrase = "correct horse battery staple";

    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "fundament-tests", "backup-" + Guid.NewGuid().ToString("N"));
    private readonly List<Process> _processes = [];
    private readonly List<string> _databases = [];

    private static string ServerDll => Path.Combine(AppContext.BaseDirectory, "fundament.dll");

    public ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
            process.Dispose();
        }
        foreach (var database in _databases)
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, database);
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Sqlite_BackupUnderWriteLoad_Verifies_AndAServerOnTheRestoredFolderServesTheSameData()
    {
        var live = Path.Combine(_root, "live");
        Dictionary<string, string> settings = new()
        {
            ["Fundament:DataDir"] = live,
            ["Fundament:Identity:BootstrapAdminPassword"] = Password,
            ["Fundament:Identity:PasswordHashIterations"] = "10000",
            ["Fundament:Jobs:PollInterval"] = "00:00:00.2",
        };
        await RoundTripAsync(settings, Path.Combine(_root, "backups"), restored =>
        {
            // The key stays with the operator (it is not in the backup): the restored node is given the live one.
            restored["Fundament:DataDir"] = Path.Combine(_root, "restored");
            restored["Fundament:MasterKeyFile"] = Path.Combine(live, "master.key");
        }, includeKey: false);
    }

    [Fact]
    public async Task Postgres_BackupToS3_WithTheKeyIncluded_RestoresIntoAnEmptyDatabaseAndEmptyBuckets()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        TestS3.Require();
        var database = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        _databases.Add(database);
        var target = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        _databases.Add(target);
        var backups = await TestS3.NewBucketAsync();
        Dictionary<string, string> settings = new()
        {
            ["Fundament:DataDir"] = Path.Combine(_root, "live"),
            ["Fundament:Storage:Provider"] = "postgres",
            ["ConnectionStrings:Fundament"] = database,
            ["Fundament:MasterKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
            ["Fundament:Identity:Issuer"] = "https://fundament.backup.test",
            ["Fundament:Identity:BootstrapAdminPassword"] = Password,
            ["Fundament:Identity:PasswordHashIterations"] = "10000",
            ["Fundament:Jobs:PollInterval"] = "00:00:00.2",
            ["Fundament:Backup:S3:ServiceUrl"] = backups.ServiceUrl!,
            ["Fundament:Backup:S3:AccessKey"] = backups.AccessKey!,
            ["Fundament:Backup:S3:SecretKey"] = backups.SecretKey!,
        };
        foreach (var (key, value) in TestS3.Settings("Fundament:Media:Storage", await TestS3.NewBucketAsync()))
        {
            settings[key] = value;
        }
        foreach (var (key, value) in TestS3.Settings("Fundament:Media:ColdStorage", await TestS3.NewBucketAsync()))
        {
            settings[key] = value;
        }
        var hot = await TestS3.NewBucketAsync();
        var cold = await TestS3.NewBucketAsync();
        await RoundTripAsync(settings, $"s3://{backups.Bucket}/nightly", restored =>
        {
            // No key configured: it comes out of the backup with the passphrase.
            restored.Remove("Fundament:MasterKey");
            restored["Fundament:DataDir"] = Path.Combine(_root, "restored");
            restored["ConnectionStrings:Fundament"] = target;
            foreach (var (key, value) in TestS3.Settings("Fundament:Media:Storage", hot).Concat(TestS3.Settings("Fundament:Media:ColdStorage", cold)))
            {
                restored[key] = value;
            }
        }, includeKey: true);
    }

    [Fact]
    public async Task Refusals_NonEmptyTarget_NewerBackup_WrongPassphrase_TamperedObjects_ChangeNothing()
    {
        var live = Path.Combine(_root, "live");
        Dictionary<string, string> settings = new()
        {
            ["Fundament:DataDir"] = live,
            ["Fundament:Identity:BootstrapAdminPassword"] = Password,
            ["Fundament:Identity:PasswordHashIterations"] = "10000",
            ["Fundament:Jobs:PollInterval"] = "00:00:00.2",
        };
        var server = await StartServerAsync(settings);
        using var admin = await ChildProcess.SignedInAsync(server.Port, Password, _ct);
        Assert.True((await admin.PutAsJsonAsync("/api/v1/secrets/app/db", new { value = new { password = "kept" } }, _ct)).IsSuccessStatusCode);
        var photo = await UploadAsync(admin, Fixture("canon-paris.jpg"), "image/jpeg");
        await ReadyAsync(admin, photo);
        var backups = Path.Combine(_root, "backups");
        var taken = await RunAsync(settings, Passphrase, "backup", "--to", backups, "--include-key");
        Assert.True(taken.ExitCode == 0, taken.Output);
        var name = Directory.GetDirectories(backups).Single();

        // Nothing without a key: none configured, and the passphrase for the one in the backup not given.
        var noKey = await RunAsync(With(settings, "Fundament:DataDir", Path.Combine(_root, "r0")), null, "restore", "--from", backups);
        Assert.Equal(1, noKey.ExitCode);
        Assert.Contains("give its passphrase on standard input", noKey.Output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "r0")) && Directory.EnumerateFiles(Path.Combine(_root, "r0"), "*", SearchOption.AllDirectories).Any());

        // A wrong passphrase opens nothing, and writes nothing.
        var wrong = await RunAsync(With(settings, "Fundament:DataDir", Path.Combine(_root, "r1")), "not the passphrase at all", "restore", "--from", backups, "--passphrase-stdin");
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("passphrase is wrong", wrong.Output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "r1"), "*", SearchOption.AllDirectories));

        // The live folder is not a restore target: refused, and the live database is as it was.
        var before = File.ReadAllBytes(Path.Combine(live, "master.key"));
        var onLive = await RunAsync(settings, Passphrase, "restore", "--from", backups, "--passphrase-stdin");
        Assert.Equal(1, onLive.ExitCode);
        Assert.Contains("is not empty", onLive.Output, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(live, "master.key")));
        Assert.Equal("kept", (await admin.GetFromJsonAsync<JsonNode>("/api/v1/secrets/app/db", _ct))!["value"]!["password"]!.GetValue<string>());

        // A backup from a newer schema is refused before anything is written.
        var newer = Path.Combine(_root, "newer");
        CopyFolder(name, Path.Combine(newer, Path.GetFileName(name)));
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(newer, Path.GetFileName(name), "backup.json")))!;
        info["migrations"]!["audit"] = 999;
        File.WriteAllText(Path.Combine(newer, Path.GetFileName(name), "backup.json"), info.ToJsonString());
        var fromNewer = await RunAsync(With(settings, "Fundament:DataDir", Path.Combine(_root, "r2")), Passphrase, "restore", "--from", newer, "--passphrase-stdin");
        Assert.Equal(1, fromNewer.ExitCode);
        Assert.Contains("taken by a newer Fundament", fromNewer.Output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "r2"), "*", SearchOption.AllDirectories));

        // backup.json is sealed with the master key: an edit (here, a row count) is refused before anything is loaded.
        var edited = Path.Combine(_root, "edited");
        CopyFolder(name, Path.Combine(edited, Path.GetFileName(name)));
        var editedInfo = JsonNode.Parse(File.ReadAllText(Path.Combine(edited, Path.GetFileName(name), "backup.json")))!;
        editedInfo["tables"]!["vault_secrets"] = 7;
        File.WriteAllText(Path.Combine(edited, Path.GetFileName(name), "backup.json"), editedInfo.ToJsonString());
        var fromEdited = await RunAsync(With(settings, "Fundament:DataDir", Path.Combine(_root, "r4")), Passphrase, "restore", "--from", edited, "--passphrase-stdin");
        Assert.Equal(1, fromEdited.ExitCode);
        Assert.Contains("does not match its seal", fromEdited.Output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "r4"), "*", SearchOption.AllDirectories));
        var verifyEdited = await RunAsync(settings, Passphrase, "backup", "verify", edited, "--passphrase-stdin");
        Assert.Equal(1, verifyEdited.ExitCode);
        Assert.Contains("FAIL seal", verifyEdited.Output, StringComparison.Ordinal);

        // A truncated manifest (a half-copied backup folder) is noticed against backup.json.
        var truncated = Path.Combine(_root, "truncated");
        CopyFolder(name, Path.Combine(truncated, Path.GetFileName(name)));
        var manifestFile = Path.Combine(truncated, Path.GetFileName(name), "manifest.jsonl");
        File.WriteAllLines(manifestFile, File.ReadAllLines(manifestFile).Skip(1));
        var fromTruncated = await RunAsync(With(settings, "Fundament:DataDir", Path.Combine(_root, "r5")), Passphrase, "restore", "--from", truncated, "--passphrase-stdin");
        Assert.Equal(1, fromTruncated.ExitCode);
        Assert.Contains("manifest.jsonl does not match its checksum", fromTruncated.Output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "r5"), "*", SearchOption.AllDirectories));

        // The backup holds the whole database: only its owner may read it.
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(name));
            foreach (var file in Directory.EnumerateFiles(name, "*", SearchOption.AllDirectories))
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            }
        }

        // The intact backup verifies (with the passphrase, the key it carries).
        var verified = await RunAsync(With(settings, "Fundament:DataDir", Path.Combine(_root, "elsewhere")), Passphrase, "backup", "verify", backups, "--passphrase-stdin");
        Assert.True(verified.ExitCode == 0, verified.Output);
        Assert.Contains("audit chain:", verified.Output, StringComparison.Ordinal);
        Assert.Contains("vault secrets: 1 of 1", verified.Output, StringComparison.Ordinal);

        // One byte changed in a stored object: verify names it, and a restore stops on it.
        var content = Directory.EnumerateFiles(Path.Combine(name, "blobs"), "*", SearchOption.AllDirectories).First(f => f.Contains("/content/", StringComparison.Ordinal));
        var bytes = File.ReadAllBytes(content);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(content, bytes);
        var tampered = await RunAsync(settings, Passphrase, "backup", "verify", backups, "--passphrase-stdin");
        Assert.Equal(1, tampered.ExitCode);
        Assert.Contains("FAIL blobs", tampered.Output, StringComparison.Ordinal);
        Assert.Contains("does not match its checksum", tampered.Output, StringComparison.Ordinal);
        var restoreTampered = await RunAsync(With(settings, "Fundament:DataDir", Path.Combine(_root, "r3")), Passphrase, "restore", "--from", backups, "--passphrase-stdin");
        Assert.Equal(1, restoreTampered.ExitCode);
        Assert.Contains("does not match its checksum", restoreTampered.Output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "r3"), "*", SearchOption.AllDirectories));

        // The database file altered: verify fails on it.
        var db = Path.Combine(name, "database", "fundament.db");
        var dbBytes = File.ReadAllBytes(db);
        dbBytes[^100] ^= 0x01;
        File.WriteAllBytes(db, dbBytes);
        var badDb = await RunAsync(settings, Passphrase, "backup", "verify", backups, "--passphrase-stdin");
        Assert.Equal(1, badDb.ExitCode);
        Assert.Contains("FAIL database", badDb.Output, StringComparison.Ordinal);

        // Usage errors are exit code 2 with the usage.
        var usage = await RunAsync(settings, null, "backup");
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("usage: fundament backup", usage.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", usage.Output + noKey.Output + wrong.Output + tampered.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// Users, a secret, configuration, a registered instance, audit and a processed photo; then a
    /// backup while writes go on, verify, restore per <paramref name="restore"/>, and a server on it.
    /// </summary>
    private async Task RoundTripAsync(Dictionary<string, string> settings, string to, Action<Dictionary<string, string>> restore, bool includeKey)
    {
        var server = await StartServerAsync(settings);
        using var admin = await ChildProcess.SignedInAsync(server.Port, Password, _ct);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/users", new { username = "alice", password = "Wonderland-Key-481", roles = new[] { "admin" } }, _ct)).StatusCode);
        Assert.True((await admin.PutAsJsonAsync("/api/v1/secrets/app/db", new { value = new { password = "s3cret" } }, _ct)).IsSuccessStatusCode);
        Assert.True((await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = "shop", environment = "*", key = "feature", value = true }, _ct)).IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/registry/instances", new { service = "shop", address = "127.0.0.1", port = 8080 }, _ct)).StatusCode);
        var original = await File.ReadAllBytesAsync(Fixture("canon-paris.jpg"), _ct);
        var photo = await UploadAsync(admin, Fixture("canon-paris.jpg"), "image/jpeg");
        await ReadyAsync(admin, photo);
        var thumbnail = await admin.GetByteArrayAsync($"/api/v1/media/{photo}/derivatives/thumb-large", _ct);
        // An upload in progress: its bytes are not in a backup, so the restored server must not offer to resume it.
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/v1/media/uploads") { Headers = { { "Tus-Resumable", "1.0.0" }, { "Upload-Length", "1000" } } };
        using var created = await admin.SendAsync(create, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var unfinished = created.Headers.Location!.OriginalString;
        using var patch = new HttpRequestMessage(HttpMethod.Patch, unfinished) { Headers = { { "Tus-Resumable", "1.0.0" }, { "Upload-Offset", "0" } }, Content = new ByteArrayContent(new byte[100]) };
        patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(patch, _ct)).StatusCode);

        // Writes go on while the backup runs; each acknowledged before it started must be in it.
        using var stopLoad = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        var acknowledged = new ConcurrentBag<int>();
        var load = Task.Run(async () =>
        {
            for (var i = 0; !stopLoad.IsCancellationRequested; i++)
            {
                var response = await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = "load", environment = "*", key = $"k{i}", value = i }, CancellationToken.None);
                Assert.True(response.IsSuccessStatusCode);
                acknowledged.Add(i);
                await admin.PutAsJsonAsync("/api/v1/secrets/load/s", new { value = new { i } }, CancellationToken.None);
            }
        }, CancellationToken.None);
        while (acknowledged.Count < 20)
        {
            await Task.Delay(50, _ct);
        }
        var before = acknowledged.Max();
        var taken = await RunAsync(settings, includeKey ? Passphrase : null, includeKey ? ["backup", "--to", to, "--include-key"] : ["backup", "--to", to]);
        await stopLoad.CancelAsync();
        await load;
        Assert.True(taken.ExitCode == 0, taken.Output);
        Assert.Contains("3 objects", taken.Output, StringComparison.Ordinal);

        var verified = await RunAsync(settings, includeKey ? Passphrase : null, includeKey ? ["backup", "verify", to, "--passphrase-stdin"] : ["backup", "verify", to]);
        Assert.True(verified.ExitCode == 0, verified.Output);
        Assert.Contains("the backup verifies", verified.Output, StringComparison.Ordinal);

        var restored = new Dictionary<string, string>(settings);
        restore(restored);
        var restoredRun = await RunAsync(restored, includeKey ? Passphrase : null, includeKey ? ["restore", "--from", to, "--passphrase-stdin"] : ["restore", "--from", to]);
        Assert.True(restoredRun.ExitCode == 0, restoredRun.Output);
        if (includeKey)
        {
            var keyFile = Path.Combine(restored["Fundament:DataDir"], "master.key");
            Assert.True(File.Exists(keyFile), restoredRun.Output);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            }
            restored["Fundament:MasterKeyFile"] = keyFile;
        }

        // The restored copy serves: a user created before the backup logs in, and everything reads back.
        var second = await StartServerAsync(restored);
        using var alice = await SignInAsync(second.Port, "alice", "Wonderland-Key-481");
        Assert.Equal("s3cret", (await alice.GetFromJsonAsync<JsonNode>("/api/v1/secrets/app/db", _ct))!["value"]!["password"]!.GetValue<string>());
        Assert.True((await alice.GetFromJsonAsync<JsonNode>("/api/v1/config/resolved?service=shop", _ct))!["values"]!["feature"]!.GetValue<bool>());
        var loadValues = (await alice.GetFromJsonAsync<JsonNode>("/api/v1/config/resolved?service=load", _ct))!["values"]!.AsObject();
        for (var i = 0; i <= before; i++)
        {
            Assert.True(loadValues.ContainsKey($"k{i}"), $"k{i} was acknowledged before the backup started and is not in it");
        }
        Assert.Contains("\"service\":\"shop\"", (await alice.GetFromJsonAsync<JsonNode>("/api/v1/registry/services", _ct))!.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal(original, await alice.GetByteArrayAsync($"/api/v1/media/{photo}/content", _ct));
        Assert.Equal(thumbnail, await alice.GetByteArrayAsync($"/api/v1/media/{photo}/derivatives/thumb-large", _ct));
        // The uploader itself (an upload is its owner's alone) finds no upload to resume.
        using var restoredAdmin = await SignInAsync(second.Port, "admin", Password);
        using var resume = new HttpRequestMessage(HttpMethod.Head, unfinished) { Headers = { { "Tus-Resumable", "1.0.0" } } };
        Assert.Equal(HttpStatusCode.NotFound, (await restoredAdmin.SendAsync(resume, _ct)).StatusCode);
        var audit = (await alice.GetFromJsonAsync<JsonNode>("/api/v1/audit/verify", _ct))!;
        Assert.True(audit["valid"]!.GetValue<bool>(), audit.ToJsonString());
        Assert.True(audit["entries"]!.GetValue<long>() > 20);
    }

    private static Dictionary<string, string> With(Dictionary<string, string> settings, string key, string value) => new(settings) { [key] = value };

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Media", "Fixtures", name);

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    private static IEnumerable<KeyValuePair<string, string>> Environment(Dictionary<string, string> settings) =>
        settings.Select(s => new KeyValuePair<string, string>(s.Key.Replace(":", "__", StringComparison.Ordinal), s.Value));

    private async Task<(Process Process, int Port)> StartServerAsync(Dictionary<string, string> settings)
    {
        var port = TestPorts.Next();
        var output = new ConcurrentQueue<string>();
        var process = ChildProcess.StartDotnet(ServerDll, [.. Environment(settings), new("Fundament__Gateway__Urls", $"http://127.0.0.1:{TestPorts.Next()}")],
            ["--urls", $"http://127.0.0.1:{port}"], onOutput: output.Enqueue, onError: output.Enqueue);
        _processes.Add(process);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        for (var i = 0; i < 360; i++)
        {
            Assert.False(process.HasExited, $"the server exited:\n{string.Join('\n', output.TakeLast(20))}");
            try
            {
                if ((await http.GetAsync("/health/ready", _ct)).StatusCode == HttpStatusCode.OK)
                {
                    return (process, port);
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(250, _ct);
        }
        Assert.Fail($"the server never became ready:\n{string.Join('\n', output.TakeLast(20))}");
        return default;
    }

    /// <summary>Runs <c>fundament ARGS</c> to its end with the settings in its environment and <paramref name="input"/> on standard input.</summary>
    private async Task<(int ExitCode, string Output)> RunAsync(Dictionary<string, string> settings, string? input, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = _root,
        };
        info.ArgumentList.Add(ServerDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in Environment(settings))
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(_ct);
        var stderr = process.StandardError.ReadToEndAsync(_ct);
        if (input is not null)
        {
            await process.StandardInput.WriteLineAsync(input);
        }
        process.StandardInput.Close();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private async Task<HttpClient> SignInAsync(int port, string username, string password)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var login = await http.PostAsJsonAsync("/api/v1/auth/login", new { username, password }, _ct);
        Assert.True(login.StatusCode == HttpStatusCode.OK, await login.Content.ReadAsStringAsync(_ct));
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await login.Content.ReadFromJsonAsync<JsonNode>(_ct))!["access_token"]!.GetValue<string>());
        return http;
    }

    private async Task<string> UploadAsync(HttpClient http, string path, string mime)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(await File.ReadAllBytesAsync(path, _ct));
        file.Headers.ContentType = new MediaTypeHeaderValue(mime);
        form.Add(file, "file", Path.GetFileName(path));
        var response = await http.PostAsync("/api/v1/media", form, _ct);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(_ct));
        return (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["id"]!.GetValue<string>();
    }

    private async Task ReadyAsync(HttpClient http, string asset)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            var state = (await http.GetFromJsonAsync<JsonNode>($"/api/v1/media/{asset}", _ct))!["state"]!.GetValue<string>();
            if (state == "ready")
            {
                return;
            }
            Assert.True(state != "failed" && DateTime.UtcNow < deadline, $"the asset is {state}");
            await Task.Delay(200, _ct);
        }
    }
}
