using System.Text.Json;
using Conic.Data;
using Conic.Evaluation;
using Conic.Methods;
using Conic.Training;
using static TorchSharp.torch;
using Conic.Runtime;

namespace Conic.Tests;

public class EndToEndTests
{
    static string[] TinyRun(string data, string run, int epochs) => new[]
    {
        "pretrain", "--data", data, "--run", run, "--instances", "96", "--batch-size", "32", "--epochs", epochs.ToString(),
        "--width", "4", "--threads", "1", "--warmup-epochs", "1", "--seed", "3", "--no-eval", "--image-size", "16",
    };

    [Theory]
    [InlineData(false, false, "sgd")]
    [InlineData(true, false, "sgd")]
    [InlineData(false, true, "sgd")]
    [InlineData(false, false, "adamw")]
    public void KilledRunResumesToTheWeightsOfAnUninterruptedRun(bool streamedFolder, bool sampledMultiCropConic, string optimizer)
    {
        // IDX data is held in memory; an image folder is decoded batch by batch, its crops cut from the files.
        string data = streamedFolder ? SyntheticData.WriteImageFolder(count: 128) : SyntheticData.WriteIdx(trainCount: 128, testCount: 16);
        string uninterrupted = Path.Combine(data, "uninterrupted"), killed = Path.Combine(data, "killed");
        const int epochs = 40;
        // ConIC's own classifier state (lazy momentum, rows started from embeddings) and small crops resume exactly too.
        // AdamW's moments and step count resume exactly as SGD's momentum.
        string[] TinyConicRun(string run) => sampledMultiCropConic
            ? [.. TinyRun(data, run, epochs), "--optimizer", optimizer, "--classifier-negatives", "16", "--classifier-rows-start", "embedding", "--small-crops", "2"]
            : [.. TinyRun(data, run, epochs), "--optimizer", optimizer];

        Assert.Equal(0, CliRunner.Run(TinyConicRun(uninterrupted)).ExitCode);

        using (var process = CliRunner.Start(TinyConicRun(killed)))
        {
            string checkpoint = new RunFolder(killed).Checkpoint;
            while (!File.Exists(checkpoint) && !process.HasExited) Thread.Sleep(2);
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        int completed = Checkpoint.ReadHeader(new RunFolder(killed).Checkpoint).CompletedEpochs;
        Assert.True(completed < epochs, $"the run finished ({completed} epochs) before it could be killed");

        var (exitCode, _, stderr) = CliRunner.Run(TinyConicRun(killed).Append("--resume").ToArray());
        Assert.True(exitCode == 0, stderr);
        Assert.Contains($"resuming {new RunFolder(killed).Checkpoint} after epoch", stderr);

        using var expected = PretrainedModel.Load(uninterrupted);
        using var resumed = PretrainedModel.Load(killed);
        var expectedState = expected.Method.state_dict();
        foreach (var (name, value) in resumed.Method.state_dict())
            Assert.True(value.eq(expectedState[name]).all().item<bool>(), $"{name} differs after resume");
        Assert.Equal(epochs + 1, File.ReadAllLines(new RunFolder(killed).Metrics).Length);
    }

    [Fact]
    public void ExistingRunIsNeitherOverwrittenNorResumedWithOtherOptions()
    {
        string data = SyntheticData.WriteIdx(trainCount: 128, testCount: 16);
        string run = Path.Combine(data, "run");
        Assert.Equal(0, CliRunner.Run(TinyRun(data, run, 1)).ExitCode);
        var (exitCode, _, stderr) = CliRunner.Run(TinyRun(data, run, 1).Concat(new[] { "--resume", "--lambda", "0" }).ToArray());
        Assert.Equal(2, exitCode);
        Assert.Contains("but --lambda 0 (run: 1) differs; leave it out, or use a new --run folder", stderr);

        // Without --resume an existing run is never overwritten.
        var again = CliRunner.Run(TinyRun(data, run, 1));
        Assert.Equal(2, again.ExitCode);
        Assert.EndsWith($"error: {run}: holds a run already (checkpoint after epoch 1); pass --resume to continue it or choose another --run", again.StdErr.Trim());
    }

    [Fact]
    public void MethodTrainingDefaultsAreRecordedAndResumeCompares()
    {
        string data = SyntheticData.WriteIdx(trainCount: 128, testCount: 16);
        string run = Path.Combine(data, "byol");
        string[] byol = TinyRun(data, run, 1).Concat(new[] { "--method", "byol" }).ToArray();
        Assert.Equal(0, CliRunner.Run(byol).ExitCode);

        var config = ConfigFile.Read(new RunFolder(run).Config);
        Assert.Equal((1.0, OptimizerKind.Lars, 1e-5), (config.LearningRate, config.Optimizer, config.WeightDecay));

        // The defaults given explicitly are the same run; another optimiser is not.
        var same = CliRunner.Run(byol.Concat(new[] { "--resume", "--optimizer", "lars", "--lr", "1", "--wd", "1e-5" }).ToArray());
        Assert.True(same.ExitCode == 0, same.StdErr);
        var other = CliRunner.Run(byol.Concat(new[] { "--resume", "--optimizer", "sgd" }).ToArray());
        Assert.Contains("but --optimizer sgd (run: lars) differs", other.StdErr);
    }

    [Fact]
    public void PretrainsATinyModelAndEvaluatesIt()
    {
        string data = SyntheticData.WriteIdx(trainCount: 192, testCount: 64, size: 16, classes: 4);
        string run = Path.Combine(data, "run");
        var options = new PretrainOptions
        {
            DataPath = data, RunDirectory = run, Instances = 128, BatchSize = 32, Epochs = 3, WarmupEpochs = 1,
            Backbone = new Models.BackboneOptions { Width = 4 }, Kernels = SuiteArithmetic.Kernels,
        };
        var splits = DatasetLoader.Load(data);
        using var model = Trainer.Pretrain(options, splits.Train, TextWriter.Null);
        var result = Evaluator.EvaluateRun(model, run, splits, TextWriter.Null);

        using var json = JsonDocument.Parse(File.ReadAllText(new RunFolder(run).Evaluation));
        double knn = json.RootElement.GetProperty("knn_top1").GetDouble();
        double linear = json.RootElement.GetProperty("linear_top1").GetDouble();
        Assert.Equal(result.KnnTop1, knn, 6);
        Assert.InRange(knn, 0, 1);
        // Four textures (chance 25 %): even a briefly trained encoder separates most of them linearly. Three epochs
        // of a width-4 network land between 0.78 and 0.9 depending on the CPU's arithmetic (bfloat16 or float32).
        Assert.InRange(linear, 0.6, 1);
        // The linear probe's own floor: the same probe on raw pixels (textures a linear model on pixels cannot all tell apart).
        Assert.InRange(json.RootElement.GetProperty("raw_pixel_linear_top1").GetDouble(), 0.25, 1);
        Assert.Equal(4, File.ReadAllLines(new RunFolder(run).Metrics).Length);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(run, "tensorboard"), "events.out.tfevents.*"));

        var (exitCode, _, stderr) = CliRunner.Run("eval", "--run", run);
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("linear probe top-1", stderr);
        Assert.True(File.Exists(Path.Combine(run, "report.md")));
        // eval rewrites report.html with what it measured.
        var evaluated = RunJson.Read<EvaluationResult>(new RunFolder(run).Evaluation);
        Assert.Contains(evaluated.KnnTop1.ToString("P2"), File.ReadAllText(Path.Combine(run, "report.html")));
        Assert.Contains("linear probe on raw pixels", File.ReadAllText(Path.Combine(run, "report.md")));
        // eval.json written before the pixel linear floor existed still reads.
        var older = JsonSerializer.Deserialize<EvaluationResult>(File.ReadAllText(new RunFolder(run).Evaluation).Replace("raw_pixel_linear_top1", "unknown_field"), RunJson.Options)!;
        Assert.Null(older.RawPixelLinearTop1);
    }

    [Fact]
    public void PretrainWritesASelfContainedHtmlReportAndReportComparesTwoRuns()
    {
        string data = SyntheticData.WriteIdx(trainCount: 96, testCount: 24, classes: 4);
        string run = Path.Combine(data, "run"), ablation = Path.Combine(data, "ablation");
        string[] Pretrain(string folder, string lambda) => new[]
        {
            "pretrain", "--data", data, "--run", folder, "--instances", "64", "--batch-size", "32", "--epochs", "2",
            "--width", "4", "--threads", "1", "--warmup-epochs", "1", "--monitor-every", "1", "--lambda", lambda,
        };
        var trained = CliRunner.Run(Pretrain(run, "1"));
        Assert.True(trained.ExitCode == 0, trained.StdErr);
        Assert.Contains("report.html", trained.StdErr);
        Assert.Contains("report: t-SNE of the test features", trained.StdErr);
        Assert.Contains("linear probe: training a 32-to-4 classifier", trained.StdErr);
        Assert.Equal(0, CliRunner.Run(Pretrain(ablation, "0")).ExitCode);

        var (exitCode, _, stderr) = CliRunner.Run("report", "--run", run, "--compare", ablation);
        Assert.True(exitCode == 0, stderr);
        string html = File.ReadAllText(Path.Combine(run, "report.html"));
        var images = System.Text.RegularExpressions.Regex.Matches(html, "src=\"data:image/png;base64,([^\"]+)\"");
        // Loss, learning rate, speed, monitor, activation maps, t-SNE, retrieval.
        Assert.Equal(7, images.Count);
        foreach (System.Text.RegularExpressions.Match image in images)
        {
            var png = Convert.FromBase64String(image.Groups[1].Value);
            Assert.True(png.Length > 1000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', "an embedded figure is not a PNG");
        }
        Assert.Contains("lambda 0,", html);
        Assert.Contains("linear probe", html);
        // Nothing loads from the network; the base64 PNG payloads are left out since they can spell "http" by chance.
        Assert.DoesNotContain("http", System.Text.RegularExpressions.Regex.Replace(html, "base64,[^\"]+", "base64,"));
    }

    [Fact]
    public void SameSeedGivesTheSameWeightsWithOrWithoutTheKnnMonitor()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 24, classes: 4);
        var splits = DatasetLoader.Load(data);
        Tensor Train(string name, KnnMonitor? monitor)
        {
            var options = new PretrainOptions
            {
                DataPath = data, RunDirectory = Path.Combine(data, name), Instances = 64, BatchSize = 16, Epochs = 2, WarmupEpochs = 1,
                Threads = 1, MonitorEvery = 1, Backbone = new Models.BackboneOptions { Width = 4 }, Kernels = SuiteArithmetic.Kernels,
            };
            using var model = Trainer.Pretrain(options, splits.Train, TextWriter.Null, monitor: monitor == null ? null : monitor.Measure);
            return model.Backbone.state_dict()["layer4.1.conv2.weight"].clone();
        }
        var monitor = KnnMonitor.Create(splits, seed: 0, bankSize: 40, querySize: 16)!;
        Assert.Equal((40, 16), (monitor.BankSize, monitor.QuerySize));
        Assert.True(Train("a", null).eq(Train("b", monitor)).all().item<bool>());

        var rows = File.ReadAllLines(new RunFolder(Path.Combine(data, "b")).Metrics).Select(l => l.Split(',')).ToArray();
        int column = Array.IndexOf(rows[0], "monitor_knn_top1");
        Assert.All(rows.Skip(1), row => Assert.InRange(double.Parse(row[column], System.Globalization.CultureInfo.InvariantCulture), 0, 1));
        Assert.Null(KnnMonitor.Create(splits with { Test = null }, seed: 0));
    }

    [Fact]
    public void TrainingLongerMakesNoMoreTensorsOutsideADisposeScope()
    {
        // A temporary made outside any dispose scope is owned by its finalizer alone, which TorchSharp lets run while
        // libtorch still reads it; inside a scope it lives until the scope ends. Set-up may make such tensors, steps not.
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8, classes: 4);
        var splits = DatasetLoader.Load(data);
        int runs = 0;
        long OutsideScopes(int epochs)
        {
            var options = new PretrainOptions
            {
                DataPath = data, RunDirectory = Path.Combine(data, $"run-{runs++}"), Instances = 64, BatchSize = 16, Epochs = epochs,
                WarmupEpochs = 1, Threads = 1, MonitorEvery = 0, Backbone = new Models.BackboneOptions { Width = 4 }, Kernels = SuiteArithmetic.Kernels,
            };
            long before = TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount;
            using (Trainer.Pretrain(options, splits.Train, TextWriter.Null)) { }
            return TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount - before;
        }
        OutsideScopes(1);  // first use: one-time libtorch and type initialisation
        long once = OutsideScopes(1);
        Assert.True(once > 0, "TorchSharp's statistics counted nothing: the check would be empty");  // the model's parameters
        Assert.Equal(once, OutsideScopes(3));
    }
}
