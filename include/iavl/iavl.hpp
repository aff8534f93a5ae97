// iavl-cpp: a persistent, versioned Merkle AVL tree, hash-compatible with cosmos/iavl.
// Include this header for the whole API.
#pragma once

#include "iavl/detail/tree_inl.hpp"
#include "iavl/errors.hpp"
#include "iavl/hash.hpp"
#include "iavl/proof.hpp"
#include "iavl/state_sync.hpp"
#include "iavl/tree.hpp"
#include "iavl/versioned_tree.hpp"
