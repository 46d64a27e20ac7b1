// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// A piggy bank created with ETH in it; smash() hands the balance to the owner by
/// SELFDESTRUCT (since Cancun the code stays, the balance moves: a "suicide"/
/// SELFDESTRUCT trace frame rather than a CALL).
contract Piggy {
    address payable public immutable owner;

    constructor() payable {
        owner = payable(msg.sender);
    }

    receive() external payable {}

    function smash() external {
        require(msg.sender == owner, "not yours");
        selfdestruct(owner);
    }
}
