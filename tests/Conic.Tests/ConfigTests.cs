using Conic.Configuration;
using System.Text.Json;
using Conic.Methods;
using Conic.Training;
using Conic.Runtime;

namespace Conic.Tests;

public class ConfigTests
{
    static PretrainOptions Saved(string run) =>
        ConfigFile.Read(new RunFolder(run).Config);

    [Fact]
    public void AYamlConfigIsReadAndFlagsRefineIt()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run"), config = Path.Combine(data, "run.yaml");
        File.WriteAllText(config, $"""
            # a ConIC run
            data_path: {data}
            instances: 32
            batch_size: 16
            epochs: 1
            warmup_epochs: 0
            monitor_every: 0
            threads: 1
            prefetch: false
            backbone:
              width: 4
            conic:
              temperature: 0.2
              consistency_ramp: 0.5
            """);
        var (exitCode, _, stderr) = CliRunner.Run("pretrain", "--config", config, "--run", run, "--seed", "7", "--no-eval");
        Assert.True(exitCode == 0, stderr);
        var saved = Saved(run);
        Assert.Equal((32, 16, 4, 0.2, 0.5, false, 7), (saved.Instances, saved.BatchSize, saved.Backbone.Width, saved.SettingsOf<ConicOptions>().Temperature,
                                                      saved.SettingsOf<ConicOptions>().ConsistencyRamp, saved.Prefetch, saved.Seed));

        // Any run's config.json is a config too; a name that is not an option is named.
        var again = CliRunner.Run("pretrain", "--config", new RunFolder(run).Config, "--run", Path.Combine(data, "again"), "--no-eval");
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.Equal(saved with { RunDirectory = Path.Combine(data, "again") }, Saved(Path.Combine(data, "again")));
        File.WriteAllText(config, "epochs: 1\nbatch_sise: 16\n");
        var typo = CliRunner.Run("pretrain", "--config", config, "--run", Path.Combine(data, "typo"));
        Assert.Equal(2, typo.ExitCode);
        Assert.Contains($"error: {config}: not a valid config", typo.StdErr);
        Assert.Contains("batch_sise", typo.StdErr);
    }

    [Fact]
    public void ResumeReadsTheRunsOwnConfigAndMoreEpochsExtendIt()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        string run = Path.Combine(data, "run");
        var first = CliRunner.Run("pretrain", "--data", data, "--run", run, "--instances", "32", "--batch-size", "16", "--epochs", "2",
                                  "--width", "4", "--threads", "1", "--warmup-epochs", "0", "--monitor-every", "0", "--lambda", "0.5", "--no-eval");
        Assert.True(first.ExitCode == 0, first.StdErr);

        // Nothing but the folder and the new total: the rest comes from the run's config.json.
        var extended = CliRunner.Run("pretrain", "--run", run, "--resume", "--epochs", "4", "--no-eval");
        Assert.True(extended.ExitCode == 0, extended.StdErr);
        Assert.Contains("after epoch 2", extended.StdErr);
        Assert.Equal(4, Checkpoint.ReadHeader(new RunFolder(run).Checkpoint).CompletedEpochs);
        Assert.Equal(5, File.ReadAllLines(new RunFolder(run).Metrics).Length);
        Assert.Equal((4, 0.5), (Saved(run).Epochs, Saved(run).SettingsOf<ConicOptions>().ConsistencyWeight));

        // Other settings are still refused.
        var other = CliRunner.Run("pretrain", "--run", run, "--resume", "--lambda", "1", "--no-eval");
        Assert.Equal(2, other.ExitCode);
        Assert.Contains("but --lambda 1 (run: 0.5) differs", other.StdErr);
    }

    [Fact]
    public void TheBackboneIsNamedAsTheCliNamesItAndTheOldSpellingIsStillRead()
    {
        string json = JsonSerializer.Serialize(new PretrainOptions(), RunJson.Options);
        Assert.Contains("\"depth\": \"resnet18\"", json);
        var old = JsonSerializer.Deserialize<PretrainOptions>(json.Replace("\"resnet18\"", "\"res_net50\""), RunJson.Options)!;
        Assert.Equal(Models.ResNetDepth.ResNet50, old.Backbone.Depth);
        // A run folder of the earlier format, committed in docs/, still reads.
        string docs = Path.Combine(AppContext.BaseDirectory, "../../../../../docs/compare-100-epochs/conic/config.json");
        Assert.Equal(Models.ResNetDepth.ResNet18, RunJson.Read<PretrainOptions>(docs).Backbone.Depth);
    }

    [Fact]
    public void ARunFileHoldsOnlyTheChosenMethodsSettingsAndOlderFilesWithEveryMethodStillRead()
    {
        var swav = new PretrainOptions().WithMethod("swav").Set("--swav-prototypes", "64");
        string json = JsonSerializer.Serialize(swav, RunJson.Options);
        Assert.Contains("\"swav\": {", json);
        Assert.DoesNotContain("\"conic\"", json);
        Assert.Equal(swav, JsonSerializer.Deserialize<PretrainOptions>(json, RunJson.Options));

        // Before 2026-12-01 every method's section was written, MoCo's as "moco" and InstDisc's as "inst_disc".
        string docs = Path.Combine(AppContext.BaseDirectory, "../../../../../docs/compare-100-epochs");
        foreach (string folder in new[] { "mocov2", "instdisc", "conic" })
        {
            var old = RunJson.Read<PretrainOptions>(new RunFolder(Path.Combine(docs, folder)).Config);
            Assert.Equal(folder, old.Method);
            Assert.True(old.MethodDefinition.Owns(old.MethodSettings));
            old.Validate();
        }
    }

    [Fact]
    public void HelpShowsTheChosenMethodsSettingsOnly()
    {
        var (exitCode, stdout, _) = CliRunner.Run("pretrain", "--method", "swav", "--help");
        Assert.Equal(0, exitCode);
        Assert.Contains("method swav:", stdout);
        Assert.Contains("--swav-prototypes K", stdout);
        Assert.DoesNotContain("--lambda", stdout);
        Assert.Contains("--crop-area-min", stdout);
    }

    [Fact]
    public void EverySettingHasOneFlagAndADefaultInsideItsRange()
    {
        foreach (var method in MethodRegistry.All)
        {
            var settings = PretrainOptions.SettingGroups(method).SelectMany(g => g.Settings).ToList();
            Assert.Equal(settings.Count, settings.Select(s => s.Flag).Distinct().Count());
            new PretrainOptions().WithMethod(method.Name).Validate();
        }
    }

    [Fact]
    public void AConfigNamesOptionsAsTheFlagsDo()
    {
        string path = Path.Combine(Path.GetTempPath(), $"conic-{Guid.NewGuid():N}.yaml");
        // The augmentation preset is applied first wherever it stands, so the brightness after it refines it.
        File.WriteAllText(path, "brightness: 0.3\nmethod: swav\nlr: 0.1\nbatch-size: 32\nswav-prototypes: 50\nwidth: 8\n" +
                                "augmentation: grayscale\nsync-bn: on\nrun: runs/flags\nseed: 3\n");
        var read = ConfigFile.Read(path);
        var expected = new PretrainOptions { RunDirectory = "runs/flags", Seed = 3 }.WithMethod("swav").Set("--augmentation", "grayscale")
            .Set("--brightness", "0.3").Set("--lr", "0.1").Set("--batch-size", "32").Set("--swav-prototypes", "50").Set("--width", "8").Set("--sync-bn", "on");
        Assert.Equal(JsonSerializer.Serialize(expected, RunJson.Options), JsonSerializer.Serialize(read, RunJson.Options));
        Assert.Equal(0.3, read.Augmentation.Brightness);

        File.WriteAllText(path, "method: swav\nlambda: 2\n");
        var otherMethods = Assert.Throws<ConicException>(() => ConfigFile.Read(path));
        Assert.Equal($"{path}: --lambda: a setting of method conic, not of swav (give --method conic)", otherMethods.Message);
        File.WriteAllText(path, "lr: fast\n");
        Assert.StartsWith($"{path}: --lr: ", Assert.Throws<ConicException>(() => ConfigFile.Read(path)).Message);
        File.WriteAllText(path, "lr-typo: 0.1\n");
        Assert.Contains("lr-typo", Assert.Throws<ConicException>(() => ConfigFile.Read(path)).Message);
        File.Delete(path);
    }

    [Fact]
    public void ConfigJsonIsWrittenWithTheFlagsNamesAndReadsBackToTheSameOptionsForEveryMethod()
    {
        string path = Path.Combine(Path.GetTempPath(), $"conic-{Guid.NewGuid():N}.json");
        foreach (var method in Methods.MethodRegistry.All)
        {
            // Every setting away from its default where its range allows, to catch one that is not written or not read.
            var options = new PretrainOptions { RunDirectory = "runs/round-trip", Seed = 7, TimeBudgetMinutes = 17, Validation = 0.1, Precision = Models.Precision.Float32, Prefetch = false }
                .WithMethod(method.Name).Set("--lr", "0.123456789").Set("--brightness", "0.8").Set("--contrast", "0.8").Set("--width", "8")
                .WithMethodDefaults();
            foreach (var setting in method.Settings.Within<PretrainOptions>(o => o.MethodSettings, (o, m) => o with { MethodSettings = m })
                         .Where(s => s.Value(options) is double or int))
            {
                var changed = setting.Apply(options, SettingText.Format(Convert.ToDouble(setting.Value(options), System.Globalization.CultureInfo.InvariantCulture) + 1));
                if (setting.Problem(changed) == null) options = changed;
            }
            string json = ConfigFile.ToJson(options);
            Assert.Contains("\"lr\": 0.123456789", json);
            Assert.DoesNotContain("learning_rate", json);
            File.WriteAllText(path, json);
            Assert.Equal(JsonSerializer.Serialize(options, RunJson.Options), JsonSerializer.Serialize(ConfigFile.Read(path), RunJson.Options));
        }
        // A name both forms use is the flag's when the flag takes the value (fp32, off), the record's otherwise (float32, false).
        string yaml = Path.ChangeExtension(path, ".yaml");
        File.WriteAllText(yaml, "precision: fp32\nprefetch: off\n");
        Assert.Equal((Models.Precision.Float32, false), (ConfigFile.Read(yaml).Precision, ConfigFile.Read(yaml).Prefetch));
        File.Delete(yaml);
        File.WriteAllText(path, "{\"precision\": \"float32\", \"prefetch\": false}");
        Assert.Equal((Models.Precision.Float32, false), (ConfigFile.Read(path).Precision, ConfigFile.Read(path).Prefetch));
        File.Delete(path);
    }

    [Theory]
    [InlineData("method: nosuch", "'nosuch' is not a method (known: conic,")]
    [InlineData("method: 5", "'method' must be a method's name")]
    [InlineData("method: swav\nswav:\n  prototypes: 10\n  colour: red", "colour")]
    public void AConfigWithAWrongMethodOrMethodSettingIsOneLineNamingIt(string yaml, string expected)
    {
        string path = Path.Combine(Path.GetTempPath(), $"conic-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        var error = Assert.Throws<ConicException>(() => ConfigFile.Read(path));
        Assert.StartsWith($"{path}: not a valid config (", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain("\n", error.Message);
        File.Delete(path);
    }
}
