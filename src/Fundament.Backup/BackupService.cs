using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Fundament.Core.Backup;
using Fundament.Core.Keys;
using Fundament.Core.Storage;
using Fundament.Media.Storage;
using Microsoft.Extensions.Hosting;

namespace Fundament.Backup;

/// <summary>Builds a throw-away host of the platform over a scratch copy (for <c>backup verify</c>), with these settings on top of the node's own.</summary>
public interface IScratchHostFactory
{
    IHost Create(IReadOnlyDictionary<string, string?> settings);
}

/// <summary>A finished backup: where it is and what it holds.</summary>
public sealed record BackupResult(string Location, string Name, long Blobs, long Bytes, IReadOnlyList<string> Missing, TimeSpan Took);

/// <summary>A finished restore.</summary>
public sealed record RestoreResult(string Name, long Blobs, string? KeyFile, IReadOnlyList<string> Missing)
{
    /// <summary>Where the backup's previous master keys went (one base64 key per line), when it carried any.</summary>
    public string? PreviousKeysFile { get; init; }
}

/// <summary>What <c>backup verify</c> found: each check with one line.</summary>
public sealed record VerifyReport(string Name, IReadOnlyList<VerifyCheck> Checks)
{
    public bool Passed => Checks.All(c => c.Passed);
}

public sealed record VerifyCheck(string Name, bool Passed, string Detail);

/// <summary>
/// Takes, restores and verifies backups (see docs/operations.md, "Backup and restore"). The
/// commands run it in their own process against the same settings as the server; the schedule runs
/// it inside a control node.
/// </summary>
public sealed partial class BackupService(
    IOptions<BackupOptions> options,
    IOptions<FundamentOptions> fundament,
    IOptions<StorageOptions> storage,
    IEnumerable<IBackupBlobSource> sources,
    IEnumerable<IMigrationSource> migrations,
    IServiceProvider services,
    TimeProvider time,
    ILogger<BackupService> logger)
{
    private const int BufferSize = 1 << 16;

    private BackupOptions Options => options.Value;

    internal DatabaseBackup TargetDatabase()
    {
        var s = storage.Value;
        var connectionString = s.IsPostgres || !string.IsNullOrWhiteSpace(s.ConnectionString)
            ? s.ConnectionString!
            : $"Data Source={Path.Combine(fundament.Value.FullDataDir, "fundament.db")}";
        return DatabaseBackup.For(s.IsPostgres ? "postgres" : "sqlite", connectionString, Options);
    }

    /// <summary>Takes a backup into a new folder under <paramref name="to"/>; with <paramref name="passphrase"/>, the master keys go in too, encrypted with it.</summary>
    public async Task<BackupResult> BackupAsync(string to, string? passphrase, CancellationToken cancellationToken)
    {
        var started = time.GetUtcNow();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var database = TargetDatabase();
        if (database is SqliteBackup sqlite && !File.Exists(sqlite.DatabasePath))
        {
            // Before the key ring loads: it would generate a key for a data folder that was never used.
            throw new BackupException($"there is no database at {sqlite.DatabasePath}: check --data-dir (or Fundament:DataDir).");
        }
        var ring = services.GetRequiredService<MasterKeyRing>();
        var envelope = passphrase is null ? null : KeyEnvelope.Seal(ring, passphrase);
        var root = BackupLocation.Open(to, Options);
        var name = $"fundament-{started.UtcDateTime:yyyyMMdd-HHmmss}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2))}";
        var work = Directory.CreateTempSubdirectory("fundament-backup-");
        try
        {
            var dump = Path.Combine(work.FullName, database.FileName);
            var contents = await database.SnapshotAsync(dump, sources, cancellationToken);
            var (dumpSize, dumpSha) = await HashFileAsync(dump, cancellationToken);
            await root.PutFileAsync($"{name}/database/{database.FileName}", dump, "application/octet-stream", cancellationToken);
            File.Delete(dump);

            var entries = new ConcurrentBag<ManifestEntry>();
            var missing = new ConcurrentBag<string>();
            await Parallel.ForEachAsync(contents.Blobs, new ParallelOptions { MaxDegreeOfParallelism = Options.Parallelism, CancellationToken = cancellationToken }, async (blob, ct) =>
            {
                var source = SourceOf(blob.Store);
                var stream = await source.OpenReadAsync(blob.Store, blob.Key, ct);
                if (stream is null && blob.Sha256 is not null)
                {
                    // Content-addressed: moved to another tier since the snapshot (its SHA-256 is checked below all the same).
                    foreach (var other in source.Stores.Where(s => s != blob.Store))
                    {
                        if ((stream = await source.OpenReadAsync(other, blob.Key, ct)) is not null)
                        {
                            break;
                        }
                    }
                }
                if (stream is null)
                {
                    // Deleted after the snapshot was taken (a purge): listed in backup.json, and restore says so.
                    missing.Add($"{blob.Store}/{blob.Key}");
                    return;
                }
                await using var _ = stream;
                var temp = Path.Combine(work.FullName, Guid.NewGuid().ToString("N"));
                try
                {
                    var (size, sha) = await CopyHashingAsync(stream, temp, ct);
                    if (blob.Sha256 is { } expected && !string.Equals(expected, sha, StringComparison.OrdinalIgnoreCase))
                    {
                        throw new BackupException($"{blob.Store}/{blob.Key} does not match its checksum ({sha}): the stored object is damaged. Nothing was written as a complete backup.");
                    }
                    var entry = new ManifestEntry(blob.Store, blob.Key, size, sha);
                    await root.PutFileAsync($"{name}/{entry.Path}", temp, "application/octet-stream", ct);
                    entries.Add(entry);
                }
                finally
                {
                    File.Delete(temp);
                }
            });

            var manifest = Path.Combine(work.FullName, BackupInfo.ManifestName);
            await using (var writer = new StreamWriter(manifest, false, new UTF8Encoding(false)))
            {
                foreach (var entry in entries.OrderBy(e => e.Store, StringComparer.Ordinal).ThenBy(e => e.Key, StringComparer.Ordinal))
                {
                    await writer.WriteLineAsync(JsonSerializer.Serialize(entry, BackupJson.Line));
                }
            }
            var (manifestSize, manifestSha) = await HashFileAsync(manifest, cancellationToken);
            await root.PutFileAsync($"{name}/{BackupInfo.ManifestName}", manifest, "application/x-ndjson", cancellationToken);
            if (envelope is not null)
            {
                await PutJsonAsync(root, $"{name}/{BackupInfo.KeyName}", envelope, cancellationToken);
            }
            var info = new BackupInfo
            {
                Name = name,
                FundamentVersion = Core.Hosting.NodeIdentity.BuildVersion,
                StartedAt = started,
                CompletedAt = time.GetUtcNow(),
                Database = new BackupDatabase(database.Provider, $"database/{database.FileName}", dumpSize, dumpSha),
                Migrations = contents.Migrations,
                Tables = contents.Tables,
                Blobs = new BackupBlobs(entries.Count, entries.Sum(e => e.Size), [.. missing.Order(StringComparer.Ordinal)]) { ManifestSha256 = manifestSha, ManifestSize = manifestSize },
                MasterKey = new BackupKey(ring.Current.Id, envelope is not null),
            };
            // Sealed with a key derived from the master key, so a restore or verify never loads a database from a backup
            // someone else wrote; then backup.json, last: its presence is what makes the backup complete.
            var infoBytes = JsonSerializer.SerializeToUtf8Bytes(info, BackupJson.Options);
            await root.PutAsync($"{name}/{BackupInfo.MacName}", new MemoryStream(Encoding.ASCII.GetBytes(BackupSeal.Compute(ring.Current, infoBytes))), "text/plain", cancellationToken);
            await root.PutAsync($"{name}/{BackupInfo.FileName}", new MemoryStream(infoBytes), "application/json", cancellationToken);
            LogTaken(logger, name, root.Describe, entries.Count, info.Blobs.Bytes, missing.Count);
            return new BackupResult($"{root.Describe}/{name}", name, entries.Count, info.Blobs.Bytes, info.Blobs.Missing, clock.Elapsed);
        }
        catch
        {
            await DeleteBackupAsync(root, name, CancellationToken.None);
            throw;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Restores the backup at <paramref name="from"/> (a backup's folder, or a location holding
    /// several: the newest complete one) into the configured database, blob stores and data folder,
    /// all of which must be empty. <paramref name="passphrase"/> is asked for only when the backup
    /// holds the master key and the settings give none.
    /// </summary>
    public async Task<RestoreResult> RestoreAsync(string from, Func<string?> passphrase, CancellationToken cancellationToken)
    {
        var (root, prefix, info, raw) = await OpenAsync(from, cancellationToken);
        CheckCompatible(info);

        var database = TargetDatabase();
        if (database is SqliteBackup)
        {
            var dataDir = fundament.Value.FullDataDir;
            // Empty folders are fine: the local blob stores create theirs as they open.
            if (Directory.Exists(dataDir) && Directory.EnumerateFiles(dataDir, "*", SearchOption.AllDirectories).Any())
            {
                throw new BackupException($"the data folder {dataDir} is not empty: restore only into an empty (or new) folder.");
            }
        }
        if (database.Provider != info.Database.Provider)
        {
            throw new BackupException($"the backup holds a {info.Database.Provider} database, and the settings name {database.Provider} storage: restore it with the settings it was taken with.");
        }
        await database.EnsureEmptyAsync(cancellationToken);
        foreach (var source in sources)
        {
            foreach (var store in source.Stores)
            {
                if (!await source.IsEmptyAsync(store, cancellationToken))
                {
                    throw new BackupException($"the blob store {source.Describe(store)} is not empty: restore only into empty stores.");
                }
            }
        }

        // The key before any data: a restore the server could not open is no restore, and the key proves the backup is ours.
        var configured = MasterKeyLoader.LoadConfigured(fundament.Value);
        var previous = MasterKeyLoader.LoadPrevious(fundament.Value);
        IReadOnlyList<MasterKey> fromBackup = [];
        if (configured is null)
        {
            if (!info.MasterKey.Included)
            {
                throw new BackupException($"the backup's data is sealed with master key {info.MasterKey.Id}, and no key is configured: set Fundament:MasterKey or Fundament:MasterKeyFile to it (a backup taken with --include-key carries it).");
            }
            fromBackup = await OpenKeyAsync(root, prefix, passphrase, cancellationToken);
            if (fromBackup[0].Id != info.MasterKey.Id)
            {
                throw new BackupException($"{BackupInfo.KeyName} holds key {fromBackup[0].Id}, and backup.json names {info.MasterKey.Id}: the backup's parts do not belong together.");
            }
        }
        else if (configured.Id != info.MasterKey.Id && previous.All(k => k.Id != info.MasterKey.Id))
        {
            throw new BackupException($"the backup's data is sealed with master key {info.MasterKey.Id}, and the configured key is {configured.Id}: configure the backup's key.");
        }
        await CheckSealAsync(root, prefix, raw, configured is null ? fromBackup : [configured, .. previous], cancellationToken);
        string? keyFile = null;
        string? previousKeysFile = null;

        var work = Directory.CreateTempSubdirectory("fundament-restore-");
        var written = new ConcurrentBag<ManifestEntry>();
        var databaseRestored = false;
        try
        {
            // The database file is checked first and loaded last, after every object is in place: a failure half-way
            // leaves an empty database, and the objects written so far are removed again.
            var dump = Path.Combine(work.FullName, database.FileName);
            await DownloadCheckedAsync(root, prefix + info.Database.File, dump, info.Database.Size, info.Database.Sha256, cancellationToken);
            var manifest = await ReadManifestAsync(root, prefix, info, cancellationToken);
            await Parallel.ForEachAsync(manifest, new ParallelOptions { MaxDegreeOfParallelism = Options.Parallelism, CancellationToken = cancellationToken }, async (entry, ct) =>
            {
                var temp = Path.Combine(work.FullName, Guid.NewGuid().ToString("N"));
                try
                {
                    await DownloadCheckedAsync(root, prefix + entry.Path, temp, entry.Size, entry.Sha256, ct);
                    written.Add(entry);
                    await SourceOf(entry.Store).WriteAsync(entry.Store, entry.Key, temp, ct);
                }
                finally
                {
                    File.Delete(temp);
                }
            });
            await database.RestoreAsync(dump, cancellationToken);
            databaseRestored = true;
            // What the backup could not carry (uploads in progress: their bytes are not in it) is dropped, so clients start over.
            await using (var connection = await database.OpenAsync(cancellationToken))
            {
                foreach (var source in sources)
                {
                    await source.PrepareRestoredAsync(connection, database.Dialect, cancellationToken);
                }
            }
            if (fromBackup.Count > 0)
            {
                Directory.CreateDirectory(fundament.Value.FullDataDir);
                keyFile = Path.Combine(fundament.Value.FullDataDir, "master.key");
                MasterKeyLoader.WriteKeyFile(keyFile, fromBackup[0]);
                if (fromBackup.Count > 1)
                {
                    // Taken mid-rotation: rows under the earlier keys need them until the rotation is finished again.
                    previousKeysFile = Path.Combine(fundament.Value.FullDataDir, "master.previous-keys");
                    MasterKeyLoader.WriteKeyFile(previousKeysFile, fromBackup.Skip(1));
                }
            }
            LogRestored(logger, info.Name, manifest.Count);
            return new RestoreResult(info.Name, manifest.Count, keyFile, info.Blobs.Missing) { PreviousKeysFile = previousKeysFile };
        }
        catch when (!databaseRestored)
        {
            foreach (var entry in written)
            {
                try
                {
                    await SourceOf(entry.Store).DeleteAsync(entry.Store, entry.Key, CancellationToken.None);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogUndoFailed(logger, ex, entry.Store, entry.Key);
                }
            }
            throw;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Checks a backup without touching the live data: every blob against its checksum, then a
    /// restore into a scratch copy (a temporary folder; for PostgreSQL a temporary database on the
    /// configured server) whose row counts must match, migrated by this binary, on which each
    /// module's <see cref="IBackupCheck"/> runs (the audit chain, a sample of secrets).
    /// </summary>
    public async Task<VerifyReport> VerifyAsync(string from, Func<string?> passphrase, IScratchHostFactory scratchHosts, CancellationToken cancellationToken)
    {
        var (root, prefix, info, raw) = await OpenAsync(from, cancellationToken);
        var checks = new List<VerifyCheck>();
        var format = info.Format <= BackupInfo.CurrentFormat;
        checks.Add(new VerifyCheck("format", format, $"format {info.Format}, taken by {info.FundamentVersion} at {info.CompletedAt:u}"));
        if (!format)
        {
            return new VerifyReport(info.Name, checks);
        }

        // 0. The key, and the seal it proves: nothing is loaded from a backup this key did not write.
        IReadOnlyList<MasterKey> keys;
        try
        {
            var configured = MasterKeyLoader.LoadConfigured(fundament.Value);
            keys = configured is not null && (configured.Id == info.MasterKey.Id || !info.MasterKey.Included)
                ? [configured, .. MasterKeyLoader.LoadPrevious(fundament.Value)]
                : info.MasterKey.Included
                    ? await OpenKeyAsync(root, prefix, passphrase, cancellationToken)
                    : throw new BackupException($"no master key is configured, and the backup does not carry one (key {info.MasterKey.Id})");
            await CheckSealAsync(root, prefix, raw, keys, cancellationToken);
            checks.Add(new VerifyCheck("seal", true, $"backup.json is sealed by master key {info.MasterKey.Id}"));
        }
        catch (BackupException ex)
        {
            checks.Add(new VerifyCheck("seal", false, ex.Message));
            return new VerifyReport(info.Name, checks);
        }

        // 1. Every blob is there and matches its checksum.
        List<ManifestEntry> manifest;
        try
        {
            manifest = await ReadManifestAsync(root, prefix, info, cancellationToken);
        }
        catch (BackupException ex)
        {
            checks.Add(new VerifyCheck("blobs", false, ex.Message));
            return new VerifyReport(info.Name, checks);
        }
        var bad = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(manifest, new ParallelOptions { MaxDegreeOfParallelism = Options.Parallelism, CancellationToken = cancellationToken }, async (entry, ct) =>
        {
            await using var stream = await root.OpenReadAsync(prefix + entry.Path, 0, null, ct);
            if (stream is null)
            {
                bad.Add($"{entry.Store}/{entry.Key} is missing");
                return;
            }
            var (size, sha) = await HashAsync(stream, ct);
            if (size != entry.Size || !string.Equals(sha, entry.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                bad.Add($"{entry.Store}/{entry.Key} does not match its checksum");
            }
        });
        checks.Add(manifest.Count != info.Blobs.Count
            ? new VerifyCheck("blobs", false, $"the manifest lists {manifest.Count} objects, backup.json {info.Blobs.Count}")
            : bad.IsEmpty
                ? new VerifyCheck("blobs", true, $"{manifest.Count} objects ({info.Blobs.Bytes} bytes) match their SHA-256" + (info.Blobs.Missing.Count > 0 ? $"; {info.Blobs.Missing.Count} were deleted while the backup ran" : ""))
                : new VerifyCheck("blobs", false, $"{bad.Count} of {manifest.Count}: {string.Join("; ", bad.Take(5))}"));

        // 2. The database restores into a scratch copy, with the rows the snapshot had.
        var work = Directory.CreateTempSubdirectory("fundament-verify-");
        PostgresBackup? scratchDatabase = null;
        try
        {
            DatabaseBackup scratch;
            var settings = new Dictionary<string, string?>
            {
                ["Fundament:DataDir"] = Path.Combine(work.FullName, "data"),
                ["Fundament:Roles"] = "all",
                // Nothing outside the copy: no Redis, no broker, blobs in the scratch folder.
                ["Fundament:Redis:Configuration"] = null,
                ["Fundament:Messaging:RabbitMq:Uri"] = null,
                ["Fundament:Media:Storage:Provider"] = "local",
                ["Fundament:Media:Storage:Path"] = null,
                ["Fundament:Media:ColdStorage:Provider"] = "local",
                ["Fundament:Media:ColdStorage:Path"] = null,
                ["Fundament:Cluster:NodeId"] = $"backup-verify-{Guid.NewGuid():N}"[..24],
                ["Fundament:Cluster:HeartbeatEnabled"] = "false",
            };
            if (info.Database.Provider == "postgres")
            {
                if (TargetDatabase() is not PostgresBackup live)
                {
                    checks.Add(new VerifyCheck("database", false, "a PostgreSQL backup is verified in a scratch database: run verify with the server's PostgreSQL settings"));
                    return new VerifyReport(info.Name, checks);
                }
                scratch = scratchDatabase = await live.CreateScratchAsync(cancellationToken);
                settings["Fundament:Storage:Provider"] = "postgres";
                settings["Fundament:Storage:ConnectionString"] = scratchDatabase.ConnectionString;
                settings["ConnectionStrings:Fundament"] = scratchDatabase.ConnectionString;
            }
            else
            {
                var file = Path.Combine(work.FullName, "data", "fundament.db");
                scratch = new SqliteBackup($"Data Source={file}");
                settings["Fundament:Storage:Provider"] = "sqlite";
                settings["Fundament:Storage:ConnectionString"] = $"Data Source={file}";
                settings["ConnectionStrings:Fundament"] = $"Data Source={file}";
            }
            var dump = Path.Combine(work.FullName, "database");
            try
            {
                await DownloadCheckedAsync(root, prefix + info.Database.File, dump, info.Database.Size, info.Database.Sha256, cancellationToken);
                await scratch.RestoreAsync(dump, cancellationToken);
            }
            catch (BackupException ex)
            {
                checks.Add(new VerifyCheck("database", false, ex.Message));
                return new VerifyReport(info.Name, checks);
            }
            var counts = await scratch.CountAsync(cancellationToken);
            var differ = info.Tables.Where(t => !counts.TryGetValue(t.Key, out var n) || n != t.Value)
                .Select(t => $"{t.Key}: {(counts.TryGetValue(t.Key, out var n) ? n : 0)} rows, expected {t.Value}").ToList();
            checks.Add(differ.Count == 0
                ? new VerifyCheck("database", true, $"{info.Database.Provider}, {counts.Count} tables, {counts.Values.Sum()} rows, as in backup.json")
                : new VerifyCheck("database", false, string.Join("; ", differ.Take(5))));

            // 3. The platform opens the copy with the key given, and each module's check passes on it.
            settings["Fundament:MasterKey"] = Convert.ToBase64String(keys[0].Export());
            settings["Fundament:MasterKeyFile"] = "";
            for (var i = 0; i < 8; i++)
            {
                settings[$"Fundament:PreviousMasterKeys:{i}"] = i + 1 < keys.Count ? Convert.ToBase64String(keys[i + 1].Export()) : null;
            }
            using var host = scratchHosts.Create(settings);
            try
            {
                await host.Services.GetRequiredService<FundamentInitializer>().InitializeAsync(cancellationToken);
                checks.Add(new VerifyCheck("open", true, $"master key {keys[0].Id} opens it; the schema migrates to this binary's"));
            }
            catch (StartupException ex)
            {
                checks.Add(new VerifyCheck("open", false, ex.Message));
                return new VerifyReport(info.Name, checks);
            }
            foreach (var check in host.Services.GetServices<IBackupCheck>())
            {
                try
                {
                    var result = await check.RunAsync(cancellationToken);
                    checks.Add(new VerifyCheck(check.Name, result.Passed, result.Detail));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    checks.Add(new VerifyCheck(check.Name, false, ex.Message));
                }
            }
            return new VerifyReport(info.Name, checks);
        }
        finally
        {
            if (scratchDatabase is not null)
            {
                try
                {
                    await scratchDatabase.DropAsync(storage.Value.ConnectionString!);
                }
                catch (Exception ex) when (ex is Npgsql.NpgsqlException)
                {
                    LogScratchLeft(logger, ex, scratchDatabase.DatabaseName);
                }
            }
            work.Delete(recursive: true);
        }
    }

    /// <summary>The complete backups under <paramref name="to"/>, newest first.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(string to, CancellationToken cancellationToken)
    {
        var root = BackupLocation.Open(to, Options);
        var names = new List<string>();
        await foreach (var key in root.ListAsync("", cancellationToken))
        {
            var parts = key.Split('/');
            if (parts is [var name, BackupInfo.FileName])
            {
                names.Add(name);
            }
        }
        return [.. names.OrderDescending(StringComparer.Ordinal)];
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> complete backups, and interrupted ones started over a week ago. Returns the names deleted.</summary>
    public async Task<IReadOnlyList<string>> PruneAsync(string to, int keep, CancellationToken cancellationToken)
    {
        var root = BackupLocation.Open(to, Options);
        var complete = new HashSet<string>(StringComparer.Ordinal);
        var all = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var key in root.ListAsync("", cancellationToken))
        {
            var parts = key.Split('/');
            if (parts.Length > 1 && parts[0].StartsWith("fundament-", StringComparison.Ordinal))
            {
                all.Add(parts[0]);
                if (parts is [_, BackupInfo.FileName])
                {
                    complete.Add(parts[0]);
                }
            }
        }
        // A backup without backup.json is interrupted, or still running (a large one takes hours): only a week on is it surely dead.
        var dayAgo = $"fundament-{time.GetUtcNow().UtcDateTime.AddDays(-7):yyyyMMdd-HHmmss}";
        var delete = complete.OrderDescending(StringComparer.Ordinal).Skip(keep)
            .Concat(all.Where(n => !complete.Contains(n) && string.CompareOrdinal(n, dayAgo) < 0)).ToList();
        foreach (var name in delete)
        {
            await DeleteBackupAsync(root, name, cancellationToken);
        }
        return delete;
    }

    /// <summary>Deletes one backup (a scheduled one that did not verify).</summary>
    public Task DeleteAsync(string to, string name, CancellationToken cancellationToken) =>
        DeleteBackupAsync(BackupLocation.Open(to, Options), name, cancellationToken);

    private static async Task DeleteBackupAsync(IBlobStore root, string name, CancellationToken cancellationToken)
    {
        var keys = new List<string>();
        await foreach (var key in root.ListAsync(name + "/", cancellationToken))
        {
            keys.Add(key);
        }
        // backup.json first: a half-deleted backup is an interrupted one, never a complete one missing objects.
        foreach (var key in keys.OrderBy(k => k.EndsWith("/" + BackupInfo.FileName, StringComparison.Ordinal) ? 0 : 1))
        {
            await root.DeleteAsync(key, cancellationToken);
        }
        // A folder keeps its sub-folders, and the temporary files of an interrupted write, which are never listed: they go too.
        if (root is LocalBlobStore)
        {
            var folder = Path.Combine(root.Describe["local:".Length..], name);
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    private async Task<(IBlobStore Root, string Prefix, BackupInfo Info, byte[] Raw)> OpenAsync(string from, CancellationToken cancellationToken)
    {
        var root = BackupLocation.Open(from, Options);
        var prefix = "";
        if (await root.SizeAsync(BackupInfo.FileName, cancellationToken) is null)
        {
            // A location holding backups: the newest complete one.
            var names = await ListAsync(from, cancellationToken);
            if (names.Count == 0)
            {
                throw new BackupException($"no complete backup at {from} (a backup is complete once its {BackupInfo.FileName} is written).");
            }
            prefix = names[0] + "/";
        }
        byte[] raw;
        await using (var stream = await root.OpenReadAsync(prefix + BackupInfo.FileName, 0, null, cancellationToken)
            ?? throw new BackupException($"no {BackupInfo.FileName} at {from}."))
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken);
            raw = buffer.ToArray();
        }
        BackupInfo? info;
        try
        {
            info = JsonSerializer.Deserialize<BackupInfo>(raw, BackupJson.Options);
        }
        catch (JsonException ex)
        {
            throw new BackupException($"{prefix}{BackupInfo.FileName} is not a Fundament backup description: {ex.Message}", ex);
        }
        if (info?.Database?.File is not ("database/fundament.db" or "database/fundament.pgdump") || info.Blobs is null || info.MasterKey is null)
        {
            throw new BackupException($"{prefix}{BackupInfo.FileName} does not describe a backup.");
        }
        return (root, prefix, info, raw);
    }

    /// <summary>Throws unless <c>backup.mac</c> is the MAC of <paramref name="raw"/> under one of <paramref name="keys"/>.</summary>
    private static async Task CheckSealAsync(IBlobStore root, string prefix, byte[] raw, IReadOnlyList<MasterKey> keys, CancellationToken cancellationToken)
    {
        string? mac = null;
        await using (var stream = await root.OpenReadAsync(prefix + BackupInfo.MacName, 0, null, cancellationToken))
        {
            if (stream is not null)
            {
                using var reader = new StreamReader(stream);
                mac = await reader.ReadToEndAsync(cancellationToken);
            }
        }
        if (!BackupSeal.Verify(keys, raw, mac))
        {
            throw new BackupException(mac is null
                ? $"{BackupInfo.MacName} is missing: the backup is not sealed, and is not loaded."
                : $"{BackupInfo.FileName} does not match its seal under the master key: it was altered, or written with another key. Nothing was loaded from it.");
        }
    }

    private void CheckCompatible(BackupInfo info)
    {
        if (info.Format > BackupInfo.CurrentFormat)
        {
            throw new BackupException($"backup {info.Name} has format {info.Format}, newer than this binary reads ({BackupInfo.CurrentFormat}): restore it with Fundament {info.FundamentVersion} or newer.");
        }
        var known = migrations.ToDictionary(m => m.Module, m => m.Migrations.Count, StringComparer.Ordinal);
        foreach (var (module, level) in info.Migrations)
        {
            if (level > known.GetValueOrDefault(module, 0))
            {
                throw new BackupException($"backup {info.Name} was taken by a newer Fundament ({info.FundamentVersion}): module '{module}' is at schema version {level}, this binary ({Core.Hosting.NodeIdentity.BuildVersion}) knows {known.GetValueOrDefault(module, 0)}. Restore it with that version or newer.");
            }
        }
    }

    private static async Task<IReadOnlyList<MasterKey>> OpenKeyAsync(IBlobStore root, string prefix, Func<string?> passphrase, CancellationToken cancellationToken)
    {
        await using var stream = await root.OpenReadAsync(prefix + BackupInfo.KeyName, 0, null, cancellationToken)
            ?? throw new BackupException($"backup.json says the key is included, and {BackupInfo.KeyName} is missing.");
        var envelope = await JsonSerializer.DeserializeAsync<KeyEnvelope>(stream, BackupJson.Options, cancellationToken)
            ?? throw new BackupException($"{BackupInfo.KeyName} is empty.");
        var secret = passphrase();
        if (string.IsNullOrEmpty(secret))
        {
            throw new BackupException("the backup carries the master key, encrypted: give its passphrase on standard input (--passphrase-stdin), or configure the key.");
        }
        return envelope.Open(secret);
    }

    private static async Task<List<ManifestEntry>> ReadManifestAsync(IBlobStore root, string prefix, BackupInfo info, CancellationToken cancellationToken)
    {
        await using var stream = await root.OpenReadAsync(prefix + BackupInfo.ManifestName, 0, null, cancellationToken)
            ?? throw new BackupException($"{prefix}{BackupInfo.ManifestName} is missing.");
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken);
        if (info.Blobs.ManifestSha256 is null || buffer.Length != info.Blobs.ManifestSize
            || !string.Equals(Convert.ToHexStringLower(SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length))), info.Blobs.ManifestSha256, StringComparison.Ordinal))
        {
            throw new BackupException($"{BackupInfo.ManifestName} does not match its checksum in backup.json: it was truncated or altered.");
        }
        buffer.Position = 0;
        using var reader = new StreamReader(buffer);
        var entries = new List<ManifestEntry>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }
            var entry = JsonSerializer.Deserialize<ManifestEntry>(line, BackupJson.Line);
            if (entry is null || !BlobKeys.IsValid(entry.Key) || !BlobKeys.IsValid(entry.Store))
            {
                throw new BackupException($"{BackupInfo.ManifestName} has an invalid line: {line[..Math.Min(line.Length, 120)]}");
            }
            entries.Add(entry);
        }
        if (entries.Count != info.Blobs.Count || entries.Sum(e => e.Size) != info.Blobs.Bytes)
        {
            throw new BackupException($"{BackupInfo.ManifestName} lists {entries.Count} objects, and backup.json {info.Blobs.Count}.");
        }
        return entries;
    }

    private IBackupBlobSource SourceOf(string store) =>
        sources.FirstOrDefault(s => s.Stores.Contains(store))
        ?? throw new BackupException($"the backup holds objects of store '{store}', which no module of this binary knows.");

    private static async Task DownloadCheckedAsync(IBlobStore root, string key, string path, long size, string sha256, CancellationToken cancellationToken)
    {
        await using var stream = await root.OpenReadAsync(key, 0, null, cancellationToken)
            ?? throw new BackupException($"{key} is missing from the backup.");
        var (actualSize, actualSha) = await CopyHashingAsync(stream, path, cancellationToken);
        if (actualSize != size || !string.Equals(actualSha, sha256, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(path);
            throw new BackupException($"{key} does not match its checksum in the backup: it was damaged or altered.");
        }
    }

    private static async Task PutJsonAsync<T>(IBlobStore root, string key, T value, CancellationToken cancellationToken)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, BackupJson.Options);
        await root.PutAsync(key, new MemoryStream(bytes), "application/json", cancellationToken);
    }

    private static async Task<(long Size, string Sha256)> CopyHashingAsync(Stream source, string path, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            await using var target = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous);
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                size += read;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    private static async Task<(long Size, string Sha256)> HashAsync(Stream source, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                size += read;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    private static async Task<(long Size, string Sha256)> HashFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await HashAsync(file, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Backup {Name} taken at {Location}: {Blobs} objects, {Bytes} bytes, {Missing} deleted while it ran")]
    private static partial void LogTaken(ILogger logger, string name, string location, int blobs, long bytes, int missing);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A failed restore could not remove the object {Store}/{Key} it had written; remove it before restoring again")]
    private static partial void LogUndoFailed(ILogger logger, Exception exception, string store, string key);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The scratch database {Database} of a verification could not be dropped; drop it by hand")]
    private static partial void LogScratchLeft(ILogger logger, Exception exception, string database);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backup {Name} restored: {Blobs} objects")]
    private static partial void LogRestored(ILogger logger, string name, int blobs);
}
