using Conic.Data;
using Conic.Training;

namespace Conic.Tests;

public class ValidationSplitTests
{
    [Fact]
    public void AValidationShareIsHeldOutOfTrainingTheSameForEverySeedAndEvaluatedOnInsteadOfTheTestSplit()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 8);
        var options = new PretrainOptions { DataPath = data, Validation = 0.25 };
        var splits = options.LoadData();
        var again = (options with { Seed = 7, Method = "simclr" }).LoadData();
        Assert.Equal((48, 16), (splits.Train.Count, splits.Test!.Count));
        // Each image once: the two splits' pixels together are the training split's, none in both.
        var all = new PretrainOptions { DataPath = data }.LoadData().Train;
        using var trainPixels = splits.Train.Gather(Enumerable.Range(0, 48).ToArray());
        using var heldPixels = splits.Test.Gather(Enumerable.Range(0, 16).ToArray());
        using var allPixels = all.Gather(Enumerable.Range(0, 64).ToArray());
        Assert.Equal(allPixels.sum().item<long>(), trainPixels.sum().item<long>() + heldPixels.sum().item<long>());
        using var heldAgain = again.Test!.Gather(Enumerable.Range(0, 16).ToArray());
        Assert.True(heldPixels.eq(heldAgain).all().item<bool>(), "another seed or method held out other images");
        Assert.Equal(all.Labels!.Length, splits.Train.Labels!.Length + splits.Test.Labels!.Length);
        Assert.Contains("validation: 16 of the 64 training images held out", splits.Notes.Last());

        Assert.Contains("--validation 0.001: 0 of the 64 training images", Assert.Throws<ConicException>(() => (options with { Validation = 0.001 }).LoadData()).Message);
        var (exitCode, _, stderr) = CliRunner.Run("pretrain", "--data", data, "--run", Path.Combine(data, "run"), "--validation", "0.25", "--epochs", "1",
                                                  "--instances", "32", "--batch-size", "16", "--width", "4", "--threads", "1", "--monitor-every", "0");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("note: validation: 16 of the 64 training images held out and evaluated on instead of the test split", stderr);
        Assert.Equal(16, RunJson.Read<Evaluation.EvaluationResult>(new Runtime.RunFolder(Path.Combine(data, "run")).Evaluation).TestImages);
    }
}
