// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./IERC20.sol";

/// A lock-and-release bridge. Users lock ETH or tokens here to be minted on the other
/// chain; the operator releases funds coming back. THE BUG: release() checks that a
/// 65-byte "signature" is attached and that the withdrawal id is new, but never checks
/// who signed it, so anyone can release anything to anyone.
contract Bridge {
    address public immutable operator;
    mapping(bytes32 => bool) public processed;

    event Locked(address indexed from, address indexed token, uint256 amount, address recipientOnOtherChain);
    event Released(bytes32 indexed id, address indexed token, address indexed to, uint256 amount);

    constructor(address operator_) {
        operator = operator_;
    }

    function depositETH(address recipientOnOtherChain) external payable {
        require(msg.value > 0, "nothing to lock");
        emit Locked(msg.sender, address(0), msg.value, recipientOnOtherChain);
    }

    function depositToken(IERC20 token, uint256 amount, address recipientOnOtherChain) external {
        require(token.transferFrom(msg.sender, address(this), amount), "token transfer failed");
        emit Locked(msg.sender, address(token), amount, recipientOnOtherChain);
    }

    /// token == address(0) releases ETH.
    function release(bytes32 id, address token, address payable to, uint256 amount, bytes calldata signature) external {
        require(!processed[id], "already processed");
        require(signature.length == 65, "bad signature length");
        // Missing: require(recover(id, token, to, amount, signature) == operator)
        processed[id] = true;
        if (token == address(0)) {
            (bool ok, ) = to.call{value: amount}("");
            require(ok, "ETH transfer failed");
        } else {
            require(IERC20(token).transfer(to, amount), "token transfer failed");
        }
        emit Released(id, token, to, amount);
    }
}
