using Conic.Distributed;
using Conic.Losses;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

// Each rank runs every check and prints one line per check; the exit code is the number of failures.
using var processes = MpiProcessGroup.Join(TimeSpan.FromSeconds(60));
int rank = processes.Rank, size = processes.Size, failures = 0;

void Expect(string name, double error, double tolerance)
{
    bool ok = error <= tolerance;
    if (!ok) failures++;
    Console.WriteLine($"rank {rank}: {(ok ? "ok" : "FAIL")} {name} (error {error:G3}, tolerance {tolerance:G3})");
}

static double RelativeError(Tensor actual, Tensor expected) =>
    actual.sub(expected).abs().max().item<float>() / Math.Max(1e-12, expected.abs().max().item<float>());

// Collectives.
var mine = arange(Kept(0), Kept(6), Kept(1), dtype: ScalarType.Float32).add(Kept(10 * rank), Kept(1)).view(2, 3);
var sum = mine.clone();
processes.AllReduce(sum);
var expectedSum = arange(Kept(0), Kept(6), Kept(1), dtype: ScalarType.Float32).mul(Kept(size)).add(Kept(10.0 * size * (size - 1) / 2), Kept(1)).view(2, 3);
Expect("all-reduce sum", RelativeError(sum, expectedSum), 0);
var maximum = mine.clone();
processes.AllReduce(maximum, Reduction.Max);
Expect("all-reduce max", RelativeError(maximum, arange(Kept(0), Kept(6), Kept(1), dtype: ScalarType.Float32).add(Kept(10 * (size - 1)), Kept(1)).view(2, 3)), 0);
var gathered = processes.AllGather(mine);
var expectedGathered = cat(Enumerable.Range(0, size).Select(r => arange(Kept(0), Kept(6), Kept(1), dtype: ScalarType.Float32).add(Kept(10 * r), Kept(1)).view(2, 3)).ToArray());
Expect("all-gather", RelativeError(gathered, expectedGathered), 0);
var broadcast = full(4, Kept((long)rank), dtype: ScalarType.Int64);
processes.Broadcast(broadcast);
Expect("broadcast", broadcast.abs().max().item<long>(), 0);
var whole = arange(Kept(0), Kept(7 * 2), Kept(1), dtype: ScalarType.Float32).view(7, 2);
var block = RowShard.Scatter(processes, rank == 0 ? whole : null, 7, [2], ScalarType.Float32);
var shard = RowShard.Of(7, processes);
Expect("row scatter", RelativeError(block, shard.Take(whole)), 0);
Expect("row gather", RelativeError(RowShard.Gather(processes, block, 7), whole), 0);

// Gradients through the collectives: each rank back-propagates the same loss of the gathered values; the gradients
// sum every rank's, so dividing by the ranks gives the gradient of the loss (what the trainer's averaging does).
var x = mine.clone().requires_grad_(true);
var all = Collectives.GatherAcross(processes, x);
var weights = arange(Kept(0), Kept(all.numel()), Kept(1), dtype: ScalarType.Float32).view_as(all);
Collectives.SumAcross(processes, all.mul(weights).sum().div(Kept(size))).backward();
Expect("gather and sum gradients", RelativeError(x.grad!.div(Kept(size)), weights.narrow(0, rank * 2, 2)), 1e-6);

// The sharded instance classifier against the whole one: loss, and the gradients of every row and embedding.
foreach (double temperature in new[] { 0.1, 0.02 })
{
    manual_seed(7);
    const int instances = 203, dimension = 16, viewsPerRank = 12;
    var classifier = randn(instances, dimension);
    var embeddings = randn(viewsPerRank * size, dimension);
    var targets = randint(0, instances, [viewsPerRank * size]);

    var wholeClassifier = classifier.clone().requires_grad_(true);
    var wholeEmbeddings = embeddings.clone().requires_grad_(true);
    var expected = ConicLosses.InstanceClassificationMaterialized(wholeEmbeddings, wholeClassifier, targets, temperature);
    expected.backward();

    var rows = RowShard.Of(instances, processes);
    var myRows = rows.Take(classifier).clone().requires_grad_(true);
    var myEmbeddings = embeddings.narrow(0, rank * viewsPerRank, viewsPerRank).clone().requires_grad_(true);
    var loss = ShardedInstanceClassification.Loss(Collectives.GatherAcross(processes, myEmbeddings), myRows, targets, rows.Start, temperature, 50,
                                                  v => Collectives.SumAcross(processes, v),
                                                  v => Collectives.MaximumAcross(processes, v));
    loss.backward();
    Expect($"sharded loss, t={temperature}", Math.Abs(loss.item<float>() - expected.item<float>()) / expected.item<float>(), 1e-5);
    Expect($"sharded row gradients, t={temperature}", RelativeError(myRows.grad!.div(Kept(size)), rows.Take(wholeClassifier.grad!)), 1e-5);
    Expect($"sharded embedding gradients, t={temperature}",
           RelativeError(myEmbeddings.grad!.div(Kept(size)), wholeEmbeddings.grad!.narrow(0, rank * viewsPerRank, viewsPerRank)), 1e-5);
}
return failures;
