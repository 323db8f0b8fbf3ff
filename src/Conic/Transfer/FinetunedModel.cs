using System.Text.Json.Nodes;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Transfer;

/// <summary>A fine-tuned network read back from its run folder's checkpoint (for export), without its data.</summary>
public sealed class FinetunedModel : IDisposable
{
    FinetunedModel(TaskNetwork network, FinetuneCheckpointHeader header)
    {
        Network = network;
        Header = header;
    }

    public TaskNetwork Network { get; }
    public FinetuneCheckpointHeader Header { get; }
    public InputNormalization Normalization => new(Header.ChannelMean, Header.ChannelStd);
    public TransferTask Task => Header.Options.Task;

    /// <summary>Whether the run folder holds a fine-tune (rather than a pretraining) checkpoint.</summary>
    public static bool IsFinetuneRun(string runDirectory)
    {
        string path = new RunFolder(runDirectory).Checkpoint;
        return File.Exists(path) && Checkpoint.ReadHeader<JsonObject>(path).ContainsKey("class_names");
    }

    public static FinetunedModel Load(string runDirectory)
    {
        string path = new RunFolder(runDirectory).Checkpoint;
        var header = Checkpoint.ReadHeader<FinetuneCheckpointHeader>(path);
        var network = header.Options.Task.CreateNetwork(new ResNet(header.Backbone), header.ClassNames.Count);
        var targets = network.state_dict().ToDictionary(kv => Finetuner.ModelPrefix + kv.Key, kv => kv.Value);
        Checkpoint.Load<FinetuneCheckpointHeader>(path, targets, skip: name => name.StartsWith(Finetuner.OptimizerPrefix, StringComparison.Ordinal));
        network.eval();
        return new FinetunedModel(network, header);
    }

    public void Dispose() => Network.Dispose();
}
