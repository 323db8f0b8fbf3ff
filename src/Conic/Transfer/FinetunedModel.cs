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

    /// <summary>The fine-tuned network, in evaluation mode.</summary>
    public TaskNetwork Network { get; }
    /// <summary>The checkpoint's header: options, backbone shape, classes, normalisation.</summary>
    public FinetuneCheckpointHeader Header { get; }
    /// <summary>How images are normalised for the network.</summary>
    public InputNormalization Normalization => new(Header.ChannelMean, Header.ChannelStd);
    /// <summary>The task the network was fine-tuned for.</summary>
    public TransferTask Task => Header.Options.Task;

    /// <summary>Whether the run folder holds a fine-tune (rather than a pretraining) checkpoint.</summary>
    public static bool IsFinetuneRun(string runDirectory)
    {
        string path = new RunFolder(runDirectory).Checkpoint;
        return File.Exists(path) && Checkpoint.ReadHeader<JsonObject>(path).ContainsKey("class_names");
    }

    /// <summary>The network saved in a fine-tune run folder's checkpoint (its optimiser state left out).</summary>
    public static FinetunedModel Load(string runDirectory)
    {
        string path = new RunFolder(runDirectory).Checkpoint;
        var header = Checkpoint.ReadHeader<FinetuneCheckpointHeader>(path);
        var network = header.Options.Task.CreateNetwork(Backbone.Create(header.Backbone), header.ClassNames.Count);
        var targets = network.state_dict().ToDictionary(kv => Finetuner.ModelPrefix + kv.Key, kv => kv.Value);
        Checkpoint.Load<FinetuneCheckpointHeader>(path, targets, skip: name => name.StartsWith(Finetuner.OptimizerPrefix, StringComparison.Ordinal));
        network.eval();
        return new FinetunedModel(network, header);
    }

    /// <summary>Frees the network.</summary>
    public void Dispose() => Network.Dispose();
}
