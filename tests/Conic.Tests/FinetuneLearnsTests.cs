using System.Text.Json;
using Conic.Runtime;
using Conic.Training;
using Conic.Transfer;

namespace Conic.Tests;

/// <summary>
/// Fine-tuning learns: from random weights, on the synthetic textures (each class a stripe or checker pattern), the
/// loss falls and the score ends clearly above what a network that learned nothing gets.
/// </summary>
public class FinetuneLearnsTests
{
    static (T Result, IReadOnlyList<(int Epoch, double Value)> Loss) Finetune<T>(string task, string data, int epochs)
    {
        string output = Path.Combine(data, task);
        var (exitCode, _, stderr) = CliRunner.Run(CliRunner.Finetune(task, data, "none", output, epochs));
        Assert.True(exitCode == 0, stderr);
        var folder = new RunFolder(output);
        return (JsonSerializer.Deserialize<T>(File.ReadAllText(folder.Evaluation), RunJson.Options)!, new MetricsCsv(folder.Metrics).Column("loss"));
    }

    static void LossFell(IReadOnlyList<(int Epoch, double Value)> loss, double factor) =>
        Assert.True(loss[^1].Value < factor * loss[0].Value, $"loss {loss[0].Value:F4} in epoch 1, {loss[^1].Value:F4} in epoch {loss[^1].Epoch}");

    [Fact]
    public void ClassificationReachesWellAboveChance()
    {
        var (result, loss) = Finetune<ClassificationResult>("classification", SyntheticData.WriteIdx(trainCount: 64, testCount: 32), epochs: 20);
        LossFell(loss, 0.5);
        Assert.True(result.Accuracy >= 0.75, $"top-1 {result.Accuracy:P1} on 4 classes (chance 25 %)");
    }

    [Fact]
    public void SegmentationFindsTheObjects()
    {
        var (result, loss) = Finetune<SegmentationResult>("segmentation", SyntheticData.WriteScenes(), epochs: 12);
        LossFell(loss, 0.5);
        // Predicting background everywhere scores the background's IoU (its pixel share) over five classes.
        double backgroundOnly = result.Classes[0].PixelShare / result.Classes.Count;
        Assert.True(result.MeanIoU >= 2 * backgroundOnly, $"mIoU {result.MeanIoU:P1}; background everywhere would give {backgroundOnly:P1}");
    }

    [Fact]
    public void DetectionFindsBoxes()
    {
        var (result, loss) = Finetune<DetectionResult>("detection", SyntheticData.WriteScenes(), epochs: 12);
        LossFell(loss, 0.5);
        // A detector that finds nothing scores 0; these 24 tiny scenes give a width-4 network about 8 % in 12 epochs.
        Assert.True(result.AP50 >= 0.03, $"AP50 {result.AP50:P1}, AP {result.AP:P1}");
    }
}
