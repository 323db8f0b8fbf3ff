using Conic.Data;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary>What the commands that read a finished run share: its model, on the run's device unless told otherwise, and its data.</summary>
static class RunFolder
{
    public static PretrainedModel LoadModel(string run, string? device)
    {
        var trained = Checkpoint.ReadHeader(Path.Combine(run, Trainer.CheckpointFile)).Options;
        return PretrainedModel.Load(run, device ?? trained.Device, trained.Threads);
    }

    /// <summary>The dataset at <paramref name="data"/>, or the one the model was trained on.</summary>
    public static DatasetSplits LoadData(PretrainedModel model, string? data) =>
        DatasetLoader.Load(data ?? model.Options.DataPath, model.Options.ImageSize);
}
