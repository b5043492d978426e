using Npgsql;

namespace Fundament.Core.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>Registers <see cref="IDatabase"/> for the configured provider and the migration runner.</summary>
    public static IServiceCollection AddFundamentStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>()
            .Bind(configuration.GetSection(StorageOptions.SectionName))
            .PostConfigure(o => o.ConnectionString ??= configuration.GetConnectionString("Fundament"))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());

        services.TryAddSingleton<IDatabase>(sp =>
        {
            var storage = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
            if (storage.IsPostgres)
            {
                var builder = new NpgsqlDataSourceBuilder(storage.ConnectionString);
                builder.ConnectionStringBuilder.CommandTimeout = storage.CommandTimeoutSeconds;
                // Fundament keeps no session state on pooled connections (no SET, no temp tables,
                // advisory locks are transaction-scoped except the migration lock, which is released
                // in a finally), so the DISCARD ALL Npgsql sends when a connection goes back to the
                // pool is a round trip per open for nothing. An operator's connection string wins.
                var given = storage.ConnectionString ?? "";
                if (!given.Contains("No Reset On Close", StringComparison.OrdinalIgnoreCase) && !given.Contains("NoResetOnClose", StringComparison.OrdinalIgnoreCase))
                {
                    builder.ConnectionStringBuilder.NoResetOnClose = true;
                }
                return new PostgresDatabase(builder.Build());
            }
            var fundament = sp.GetRequiredService<IOptions<FundamentOptions>>().Value;
            var connectionString = string.IsNullOrWhiteSpace(storage.ConnectionString)
                ? $"Data Source={Path.Combine(fundament.FullDataDir, "fundament.db")}"
                : storage.ConnectionString;
            return new SqliteDatabase(connectionString);
        });
        services.TryAddSingleton<MigrationRunner>();
        services.TryAddSingleton<LeaseStore>();
        if (!services.Any(d => d.ServiceType == typeof(SchemaVersionHealthCheck)))
        {
            services.TryAddSingleton<SchemaVersionHealthCheck>();
            services.AddHealthChecks().AddCheck<SchemaVersionHealthCheck>("schema", tags: ["ready"]);
        }
        services.AddMigrations(new EmbeddedMigrations("fundament", typeof(EmbeddedMigrations).Assembly));
        return services;
    }

    /// <summary>Adds a module's migrations, once per module; they run at start-up before any endpoint serves.</summary>
    public static IServiceCollection AddMigrations(this IServiceCollection services, IMigrationSource source)
    {
        // Not TryAddEnumerable: it tells instances apart by type, and every module's source is an EmbeddedMigrations.
        if (!services.Any(d => d.ServiceType == typeof(IMigrationSource) && d.ImplementationInstance is IMigrationSource existing && existing.Module == source.Module))
        {
            services.AddSingleton(source);
        }
        return services;
    }
}

internal sealed class StorageOptionsValidator : SettingsValidator<StorageOptions>
{
    protected override string Section => StorageOptions.SectionName;

    protected override void Check(StorageOptions o, SettingsProblems problems)
    {
        problems.Require(o.IsPostgres || string.Equals(o.Provider, "sqlite", StringComparison.OrdinalIgnoreCase), o.Provider, "must be 'sqlite' or 'postgres'.");
        if (o.IsPostgres && string.IsNullOrWhiteSpace(o.ConnectionString))
        {
            problems.AddSentence($"ConnectionStrings:Fundament is required when {problems.Key(nameof(o) + "." + nameof(o.Provider))} is 'postgres'.");
        }
        problems.Between(o.CommandTimeoutSeconds, 1, 3600);
    }
}
