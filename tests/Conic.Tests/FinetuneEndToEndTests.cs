using System.Text.Json;
using Conic.Runtime;
using Conic.Transfer;
using Microsoft.ML.OnnxRuntime;

namespace Conic.Tests;

public class FinetuneEndToEndTests
{
    [Theory]
    [InlineData("segmentation")]
    [InlineData("detection")]
    public void FinetuneFromAPretrainedRunEvaluatesDrawsAndExportsToOnnx(string task)
    {
        string scenes = SyntheticData.WriteScenes();
        string pretrained = CliRunner.PretrainOneEpoch(SyntheticData.WriteIdx(trainCount: 64, testCount: 8), instances: 64, batchSize: 32, width: 4, threads: 1);
        string output = Path.Combine(scenes, task);
        var (exitCode, _, stderr) = CliRunner.Run(CliRunner.Finetune(task, scenes, pretrained, output, epochs: 2));
        Assert.True(exitCode == 0, stderr);
        string evaluation = File.ReadAllText(new RunFolder(output).Evaluation);
        if (task == "segmentation")
        {
            var result = JsonSerializer.Deserialize<SegmentationResult>(evaluation, Training.RunJson.Options)!;
            Assert.Equal(["background", "class 0", "class 1", "class 2", "class 3"], result.Classes.Select(c => c.Name));
            Assert.InRange(result.MeanIoU, 0, 1);
            Assert.Equal(pretrained, result.Initialisation);
        }
        else
        {
            var result = JsonSerializer.Deserialize<DetectionResult>(evaluation, Training.RunJson.Options)!;
            Assert.Equal(["class 0", "class 1", "class 2", "class 3"], result.Categories.Select(c => c.Name));
            Assert.InRange(result.AP, 0, 1);
        }
        Assert.Equal(3, File.ReadAllLines(new RunFolder(output).Metrics).Length);
        Assert.True(new FileInfo(Path.Combine(output, "predictions.png")).Length > 1000);
        Assert.Contains(task == "segmentation" ? "mIoU" : "AP50", stderr);
        // A report like a pretraining run's: the result, curves, the predictions picture, the configuration.
        string report = File.ReadAllText(new RunFolder(output).HtmlReport);
        Assert.Contains(task == "segmentation" ? "mIoU" : "COCO box AP", report);
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(report, "data:image/png;base64,").Count);  // loss, validation scores, predictions
        Assert.Contains("&quot;epochs&quot;: 2", report);

        // The fine-tuned network exports whole, with its task's outputs.
        var export = CliRunner.Run("export", "--run", output, "--format", "onnx");
        Assert.True(export.ExitCode == 0, export.StdErr);
        using var session = new InferenceSession(Path.Combine(output, task == "segmentation" ? "segmenter.onnx" : "detector.onnx"));
        Assert.Equal(task, session.ModelMetadata.CustomMetadataMap["task"]);
        Assert.Equal(task == "segmentation" ? ["logits", "classes"] : ["boxes", "scores", "labels"], session.OutputMetadata.Keys);
    }
}
