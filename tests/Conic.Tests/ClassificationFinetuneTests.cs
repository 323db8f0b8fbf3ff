using System.Text.Json;
using Conic.Runtime;
using Conic.Transfer;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Conic.Tests;

public class ClassificationFinetuneTests
{
    [Fact]
    public void AFractionOfTheLabelsFinetunesAClassifierThatExportsToOnnx()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 16);
        string pretrained = CliRunner.PretrainOneEpoch(data, instances: 64, batchSize: 32, width: 4, threads: 1);
        string output = Path.Combine(data, "classifier");
        var (exitCode, _, stderr) = CliRunner.Run("finetune", "--task", "classification", "--run", pretrained, "--data", data, "--out", output,
                                                  "--label-fraction", "0.25", "--epochs", "2", "--batch-size", "8", "--threads", "1");
        Assert.True(exitCode == 0, stderr);
        var result = JsonSerializer.Deserialize<ClassificationResult>(File.ReadAllText(new RunFolder(output).Evaluation), Training.RunJson.Options)!;
        Assert.Equal(16, result.LabelledImages);  // a quarter of each class's 16 images
        Assert.Equal(16, result.TestImages);
        Assert.InRange(result.Accuracy, 0, 1);
        Assert.Equal(4, result.Classes.Count);

        var export = CliRunner.Run("export", "--run", output, "--format", "onnx");
        Assert.True(export.ExitCode == 0, export.StdErr);
        using var session = new InferenceSession(Path.Combine(output, "classifier.onnx"));
        var pixels = new DenseTensor<float>(new float[2 * 16 * 16], [2, 1, 16, 16]);
        using var outputs = session.Run([NamedOnnxValue.CreateFromTensor(Export.OnnxWriter.InputName, pixels)]);
        Assert.Equal([2, 4], outputs.Single(o => o.Name == Export.OnnxWriter.LogitsName).AsTensor<float>().Dimensions.ToArray());
    }

    [Fact]
    public void AProbeIsAFrozenBackboneClassifierKeptOnlyWithSave()
    {
        string data = SyntheticData.WriteIdx(trainCount: 32, testCount: 8);
        string pretrained = CliRunner.PretrainOneEpoch(data, instances: 32, batchSize: 16, width: 4, threads: 1);
        string[] probe = ["probe", "--run", pretrained, "--data", data, "--epochs", "1", "--batch-size", "8", "--threads", "1"];
        var (exitCode, _, stderr) = CliRunner.Run(probe);
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("classification: top-1", stderr);
        Assert.DoesNotContain("report:", stderr);
        Assert.False(Directory.Exists(Path.Combine(pretrained, "probe")), "a probe without --save left a folder");

        (exitCode, _, stderr) = CliRunner.Run([.. probe, "--save"]);
        Assert.True(exitCode == 0, stderr);
        var saved = new RunFolder(Path.Combine(pretrained, "probe"));
        Assert.True(File.Exists(saved.Checkpoint) && File.Exists(saved.Evaluation), stderr);
        var options = Training.Checkpoint.ReadHeader<FinetuneCheckpointHeader>(saved.Checkpoint).Options;
        Assert.True(options.FreezeBackbone);
        Assert.Equal(TransferTask.Classification, options.Task);
        // A saved probe is refused rather than overwritten, and --resume (which the refusal names) is accepted.
        (exitCode, _, stderr) = CliRunner.Run([.. probe, "--save"]);
        Assert.Equal(2, exitCode);
        Assert.Contains("pass --resume", stderr);
        (exitCode, _, stderr) = CliRunner.Run([.. probe, "--save", "--resume"]);
        Assert.True(exitCode == 0, stderr);
    }

    [Fact]
    public void ALabelFractionOutsideClassificationOrRangeIsRefused()
    {
        string data = SyntheticData.WriteIdx(trainCount: 16, testCount: 4);
        var (exitCode, _, stderr) = CliRunner.Run("finetune", "--task", "classification", "--run", "none", "--data", data, "--label-fraction", "1.5");
        Assert.Equal(2, exitCode);
        Assert.EndsWith("error: --label-fraction: 1.5 must be in (0, 1]", stderr.Trim());
        (exitCode, _, stderr) = CliRunner.Run("finetune", "--task", "segmentation", "--run", "none", "--data", data, "--label-fraction", "0.1");
        Assert.Equal(2, exitCode);
        Assert.EndsWith("error: --label-fraction is for --task classification", stderr.Trim());
    }

    [Fact]
    public void SupervisedPretrainingLearnsTheLabelsAndNeedsThem()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 16);
        string run = Path.Combine(data, "supervised");
        var (exitCode, _, stderr) = CliRunner.Run("pretrain", "--method", "supervised", "--data", data, "--run", run, "--batch-size", "16",
                                                  "--epochs", "10", "--warmup-epochs", "1", "--width", "4", "--threads", "1", "--monitor-every", "0");
        Assert.True(exitCode == 0, stderr);
        var config = File.ReadAllText(new RunFolder(run).Config);
        Assert.Contains("\"supervised-classes\": 4", config);  // the data's class count, recorded for the checkpoint
        // Four textures, ten epochs with their labels: far above chance (25 %) on the test images.
        var evaluation = JsonSerializer.Deserialize<Evaluation.EvaluationResult>(File.ReadAllText(new RunFolder(run).Evaluation), Training.RunJson.Options)!;
        Assert.True(evaluation.KnnTop1 > 0.5, $"kNN {evaluation.KnnTop1}");

        string unlabelled = SyntheticData.WriteImageFolder(count: 8);
        foreach (var folder in Directory.GetDirectories(unlabelled))
            foreach (var file in Directory.GetFiles(folder)) File.Move(file, Path.Combine(unlabelled, Path.GetFileName(file)));
        foreach (var folder in Directory.GetDirectories(unlabelled)) Directory.Delete(folder);
        (exitCode, _, stderr) = CliRunner.Run("pretrain", "--method", "supervised", "--data", unlabelled, "--run", Path.Combine(unlabelled, "run"), "--epochs", "1", "--threads", "1");
        Assert.Equal(2, exitCode);
        Assert.Contains("--method supervised needs labelled images", stderr);
    }

    [Theory]
    [InlineData(new string[] { "--freeze-backbone" }, true)]
    [InlineData(new string[] { "--freeze-backbone", "off" }, false)]
    [InlineData(new string[0], false)]
    public void FreezeBackboneIsASwitch(string[] flag, bool frozen)
    {
        string data = SyntheticData.WriteIdx(trainCount: 16, testCount: 4);
        string output = Path.Combine(data, "switch");
        var (exitCode, _, stderr) = CliRunner.Run([.. CliRunner.Finetune("classification", data, "none", output, epochs: 1), .. flag]);
        Assert.True(exitCode == 0, stderr);
        Assert.Equal(frozen, Training.RunJson.Read<Transfer.FinetuneOptions>(new Runtime.RunFolder(output).Config).FreezeBackbone);
    }
}
