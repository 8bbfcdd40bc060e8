"""Contract-test cases for the torch.nn layers of the third batch of torch names (see
test_layer_contract.py): EmbeddingBag in its three modes, with a padding index."""
import pyfront as pf

_BAGS = {"input_shape": (3, 5), "input_dtype": "int64", "input_range": (0, 10),
         # any bag size is a valid input: a 3-D one is the wrong shape
         "bad_input_shape": (3, 5, 2)}

CASES = [
    dict(_BAGS, name="embedding_bag_mean", make=lambda: pf.nn.EmbeddingBag(10, 4)),
    dict(_BAGS, name="embedding_bag_sum_padding",
         make=lambda: pf.nn.EmbeddingBag(10, 4, mode="sum", padding_idx=3)),
    dict(_BAGS, name="embedding_bag_max", make=lambda: pf.nn.EmbeddingBag(10, 4, mode="max")),
]
