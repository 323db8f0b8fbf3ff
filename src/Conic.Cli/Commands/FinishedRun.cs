using System.CommandLine;
using Conic.Data;
using Conic.Training;
using Conic.Runtime;

namespace Conic.Cli.Commands;

/// <summary>
/// What the commands that read a finished run share: their --run, --data and --device options, the run's model (on
/// the run's device unless told otherwise) and its data.
/// </summary>
static class FinishedRun
{
    public static Option<string> RunOption() => new(PretrainOptions.RunFlag)
    {
        HelpName = "DIR", Description = $"run folder with checkpoint.bin",
        DefaultValueFactory = _ => new PretrainOptions().RunDirectory,
    };

    public static Option<string?> DataOption(string description = "dataset (default: the one the run was trained on)") =>
        new("--data") { HelpName = "PATH", Description = description };

    public static Option<string?> DeviceOption() => new("--device") { HelpName = "DEV", Description = "cpu, cuda or cuda:N (default: the run's)" };

    public static PretrainedModel LoadModel(string run, string? device)
    {
        var folder = new RunFolder(run);
        var trained = Checkpoint.ReadHeader(folder.Checkpoint).Options;
        // The checkpoint carries its own options; a damaged config.json is still worth saying (a user reads and copies it).
        if (File.Exists(folder.Config))
        {
            try
            {
                ConfigFile.Read(folder.Config);
            }
            catch (ConicException e)
            {
                Console.Error.WriteLine($"warning: {e.Message}; using the options saved in {folder.Checkpoint}");
            }
        }
        // All cores: the run's own thread count was for training, e.g. one per rank of a data-parallel run.
        return PretrainedModel.Load(run, device ?? trained.Device, threads: 0);
    }

    /// <summary>The dataset at <paramref name="data"/> with images sized as the training images, or the one the model was trained on.</summary>
    public static DatasetSplits LoadData(PretrainedModel model, string? data)
    {
        var splits = data == null ? TrainingData(model) : (model.Options with { DataPath = data, ImageSize = ImageSize(model).Height }).LoadData(Console.Error);
        foreach (string note in splits.Notes) Console.Error.WriteLine($"note: {note}");
        return splits;
    }

    /// <summary>The training images' size; runs from before it was recorded read it from their training data.</summary>
    public static (int Height, int Width) ImageSize(PretrainedModel model)
    {
        if (model.ImageSize.Height > 0) return model.ImageSize;
        var train = TrainingData(model).Train;
        return (train.Height, train.Width);
    }

    static DatasetSplits TrainingData(PretrainedModel model) => model.Options.LoadData(Console.Error);
}
