using Fundament.Core.Hosting;
using Microsoft.Extensions.Configuration;
using YamlDotNet.RepresentationModel;

namespace Fundament.Tests.Hosting;

/// <summary>
/// The Compose file and the Kubernetes manifests cannot run here (no Docker, no cluster), but what
/// they tell the binary can be checked: every setting binds to a real option with a valid value (a
/// misspelt key would otherwise be ignored silently), every role exists, every Deployment probes
/// the health endpoints, and Kustomize lists every manifest.
/// </summary>
public sealed class DeploymentFilesTests
{
    private static readonly string Deploy = Path.Combine(RepoRoot(), "deploy");

    /// <summary>Option sections and the class each binds to; the longest matching prefix wins.</summary>
    private static readonly Dictionary<string, Type> Sections = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Fundament"] = typeof(FundamentOptions),
        ["Fundament:Storage"] = typeof(Fundament.Core.Storage.StorageOptions),
        ["Fundament:Redis"] = typeof(Fundament.Core.Redis.RedisOptions),
        ["Fundament:Identity"] = typeof(Fundament.Identity.IdentityOptions),
        ["Fundament:Registry"] = typeof(Fundament.Registry.RegistryOptions),
        ["Fundament:Registry:Self"] = typeof(Fundament.Registry.SelfRegistrationOptions),
        ["Fundament:Gateway"] = typeof(Fundament.Gateway.GatewayOptions),
        ["Fundament:Media"] = typeof(Fundament.Media.MediaOptions),
        ["Fundament:Jobs"] = typeof(Fundament.Jobs.JobsOptions),
        ["Fundament:Messaging"] = typeof(Fundament.Messaging.MessagingOptions),
    };

    /// <summary>Variables that are not Fundament settings but are meant to be there.</summary>
    private static readonly HashSet<string> Environment = new(StringComparer.Ordinal) { "MALLOC_ARENA_MAX", "POD_IP", "ConnectionStrings__Fundament" };

    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Fundament.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("the repository root (Fundament.slnx) is not above the test binaries");
    }

    private static List<YamlMappingNode> Documents(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>().ToList();
    }

    private static YamlNode? At(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var next))
            {
                return null;
            }
            node = next;
        }
        return node;
    }

    private static string Scalar(YamlNode? node) => (node as YamlScalarNode)?.Value ?? "";

    private static IEnumerable<string> KubernetesFiles() =>
        Directory.EnumerateFiles(Path.Combine(Deploy, "kubernetes"), "*.yaml").Where(f => Path.GetFileName(f) != "kustomization.yaml").Order();

    /// <summary>Every (name, value) a file hands to Fundament, with where it came from.</summary>
    private static IEnumerable<(string Where, string Name, string Value)> Settings()
    {
        foreach (var file in KubernetesFiles())
        {
            foreach (var doc in Documents(file))
            {
                var where = $"{Path.GetFileName(file)} {Scalar(At(doc, "kind"))}/{Scalar(At(doc, "metadata", "name"))}";
                if (Scalar(At(doc, "kind")) == "ConfigMap" && At(doc, "data") is YamlMappingNode data)
                {
                    foreach (var (k, v) in data.Children)
                    {
                        yield return (where, Scalar(k), Scalar(v));
                    }
                }
                if (At(doc, "spec", "template", "spec", "containers") is YamlSequenceNode containers)
                {
                    foreach (var container in containers)
                    {
                        if (At(container, "env") is YamlSequenceNode env)
                        {
                            foreach (var variable in env)
                            {
                                yield return (where, Scalar(At(variable, "name")), Scalar(At(variable, "value")));
                            }
                        }
                    }
                }
            }
        }
        foreach (var line in File.ReadLines(Path.Combine(Deploy, "kubernetes", "secrets.env.example")).Where(l => l.Contains('=', StringComparison.Ordinal) && !l.StartsWith('#')))
        {
            var (name, value) = (line[..line.IndexOf('=', StringComparison.Ordinal)], line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            yield return ("secrets.env.example", name, value);
        }
        foreach (var doc in Documents(Path.Combine(Deploy, "docker-compose.yml")))
        {
            if (At(doc, "services") is not YamlMappingNode services)
            {
                continue;
            }
            // Only the services built from Fundament's Dockerfile; the others are PostgreSQL, Redis, MinIO.
            // (directly, or through the shared `<<: *fundament` block, which the YAML model keeps as a merge key).
            foreach (var (service, definition) in services.Children.Where(s => At(s.Value, "build") is not null || (At(s.Value, "<<") is { } shared && At(shared, "build") is not null)))
            {
                if (At(definition, "environment") is YamlMappingNode environment)
                {
                    foreach (var (k, v) in environment.Children)
                    {
                        yield return ($"docker-compose.yml {Scalar(service)}", Scalar(k), Scalar(v));
                    }
                }
            }
        }
    }

    [Fact]
    public void Every_setting_in_the_deployment_files_binds_to_a_real_option()
    {
        var checkedCount = 0;
        foreach (var (where, name, value) in Settings())
        {
            if (!name.StartsWith("Fundament__", StringComparison.Ordinal))
            {
                Assert.True(Environment.Contains(name), $"{where}: {name} is not a Fundament setting");
                continue;
            }
            var key = name.Replace("__", ":", StringComparison.Ordinal);
            var section = Sections.Keys.Where(s => key.StartsWith(s + ":", StringComparison.OrdinalIgnoreCase)).MaxBy(s => s.Length);
            Assert.True(section is not null, $"{where}: {name} is in no known option section");
            // A placeholder or a Compose/Kubernetes substitution stands for a value of the right type.
            var sample = value.Contains("${", StringComparison.Ordinal) || value.Contains("$(", StringComparison.Ordinal) ? "http://10.0.0.1:5080" : value;
            var configuration = new ConfigurationBuilder().AddInMemoryCollection([new(key, sample)]).Build();
            var options = Activator.CreateInstance(Sections[section!])!;
            try
            {
                configuration.GetSection(section!).Bind(options, o => o.ErrorOnUnknownConfiguration = true);
            }
            catch (InvalidOperationException ex)
            {
                Assert.Fail($"{where}: {name}={value} does not bind to {Sections[section!].Name}: {ex.Message}");
            }
            checkedCount++;
        }
        Assert.True(checkedCount > 30, $"only {checkedCount} settings were found; the files' shape changed under this test");
    }

    [Fact]
    public void Every_kubernetes_deployment_runs_known_roles_and_probes_the_health_endpoints()
    {
        var roles = new List<string>();
        foreach (var file in KubernetesFiles().Where(f => !f.EndsWith(".example.yaml", StringComparison.Ordinal)))
        {
            foreach (var doc in Documents(file).Where(d => Scalar(At(d, "kind")) == "Deployment"))
            {
                var name = Scalar(At(doc, "metadata", "name"));
                var container = ((YamlSequenceNode)At(doc, "spec", "template", "spec", "containers")!).Children.Single();
                var args = ((YamlSequenceNode)At(container, "args")!).Children.Select(Scalar).ToList();
                Assert.Equal("--roles", args[0]);
                Assert.True(FundamentRoles.TryParse(args[1], out var parsed, out var error), $"{name}: {error}");
                roles.AddRange(parsed);
                Assert.Equal("/health/live", Scalar(At(container, "livenessProbe", "httpGet", "path")));
                Assert.Equal("/health/ready", Scalar(At(container, "readinessProbe", "httpGet", "path")));
                var envFrom = ((YamlSequenceNode)At(container, "envFrom")!).Children;
                Assert.Contains(envFrom, e => Scalar(At(e, "configMapRef", "name")) == "fundament");
                Assert.Contains(envFrom, e => Scalar(At(e, "secretRef", "name")) == "fundament");
                Assert.Equal("true", Scalar(At(container, "securityContext", "readOnlyRootFilesystem")));
            }
        }
        Assert.Equal(new[] { FundamentRoles.Control, FundamentRoles.Gateway, FundamentRoles.Media, FundamentRoles.MediaWorker }.Order(), roles.Order());
    }

    [Fact]
    public void Kustomize_lists_every_manifest_except_the_examples()
    {
        var kustomization = Documents(Path.Combine(Deploy, "kubernetes", "kustomization.yaml")).Single();
        var listed = ((YamlSequenceNode)At(kustomization, "resources")!).Children.Select(Scalar).Order();
        var files = KubernetesFiles().Select(Path.GetFileName).Where(f => !f!.EndsWith(".example.yaml", StringComparison.Ordinal)).Order();
        Assert.Equal(files, listed);
    }
}
